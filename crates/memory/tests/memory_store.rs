//! The conformance suite on `memory://`.

use std::sync::Arc;

use async_trait::async_trait;
use ragchat_memory::backend::memory::MemoryStore;
use ragchat_memory::testing::{self, StoreFixture};
use ragchat_memory::{SessionKey, SessionStore};

struct Fixture(Arc<MemoryStore>);

#[async_trait]
impl StoreFixture for Fixture {
    async fn open(&self) -> Arc<dyn SessionStore> {
        self.0.clone()
    }

    async fn plant_corrupt(&self, _key: &SessionKey) -> bool {
        false
    }

    fn purges_idle_sessions(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn conformance() {
    testing::run_all(&Fixture(Arc::new(MemoryStore::new()))).await;
}
