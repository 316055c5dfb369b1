//! `Idempotency-Key` on `POST /v1/sessions/{session}/messages`: a client that retries
//! a turn (a timeout, a dropped connection) with the same key gets the first turn's
//! answer, and nothing new is stored, on this server or on any other sharing the store.
//!
//! The key fixes the ids of the turn's two messages: they are derived from (user,
//! session, key) by [`turn_ids`], so every attempt writes the same messages and the
//! store's id-idempotent append keeps the first. Before answering, the stored
//! conversation is asked for those ids: a turn found there is replayed (JSON, or the
//! same `token`, `sources`, `done` events), with `Idempotent-Replayed: true`. Retries
//! on one server wait for the attempt in flight ([`InFlight`]); attempts racing on two
//! servers both run, the store keeps one, and both answer with what it kept.
//!
//! A key is 1-255 visible ASCII characters. Reusing one for a different message is
//! refused (`422 idempotency_key_reused`). A turn cut short (the client went away
//! mid-stream) is stored `incomplete` and replayed as such: use a new key to ask again.
//! The key is honoured while the turn is in the conversation (not after the session is
//! deleted or the turn trimmed).

//!
//! - [`keys`]: the header, its checks, and the ids a key fixes ([`turn_ids`]);
//! - [`in_flight`]: attempts running on this server ([`InFlight`]);
//! - [`stored`]: what the store already holds for a key's turn.
//!
//! The route that runs or replays such a turn is `routes::turns`.

pub mod in_flight;
pub mod keys;
pub mod stored;

pub use self::in_flight::InFlight;
pub use self::keys::{key_from, turn_ids, HEADER, MAX_KEY_LEN, REPLAYED_HEADER};
pub use self::stored::{prior_turn, settled};
