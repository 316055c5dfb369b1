//! What the engine's tests share: the bundled corpus, indexed once under the target dir.

use std::path::Path;
use std::sync::OnceLock;

use ragchat_rag::{CorpusSource, Index, IngestOptions};

/// The bundled corpus, indexed under the target dir (reused when unchanged).
pub(crate) fn index() -> Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ragchat-engine-tests");
            Index::open_or_build(
                &dir,
                &CorpusSource::Bundled,
                &IngestOptions::default(),
                &|_| {},
            )
            .expect("index the bundled corpus")
            .0
        })
        .clone()
}
