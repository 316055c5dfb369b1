//! The Lua scripts of the session layout (see the module docs of `backend::redis`).

use redis::Script;

/// The session scripts, each with the shared Lua in front (`buckets.lua`, `common.lua`;
/// `turn.lua` takes only the first).
#[derive(Clone)]
pub(super) struct Scripts {
    pub(super) append: Script,
    pub(super) turn: Script,
    pub(super) load: Script,
    pub(super) delete: Script,
    pub(super) title: Script,
    pub(super) convert: Script,
}

impl Scripts {
    pub(super) fn load() -> Self {
        Scripts {
            append: Script::new(concat!(
                include_str!("buckets.lua"),
                include_str!("common.lua"),
                include_str!("append.lua")
            )),
            turn: Script::new(concat!(
                include_str!("buckets.lua"),
                include_str!("turn.lua")
            )),
            load: Script::new(concat!(
                include_str!("buckets.lua"),
                include_str!("common.lua"),
                include_str!("load.lua")
            )),
            delete: Script::new(concat!(
                include_str!("buckets.lua"),
                include_str!("common.lua"),
                include_str!("delete.lua")
            )),
            title: Script::new(concat!(
                include_str!("buckets.lua"),
                include_str!("common.lua"),
                include_str!("title.lua")
            )),
            convert: Script::new(concat!(
                include_str!("buckets.lua"),
                include_str!("common.lua"),
                include_str!("convert.lua")
            )),
        }
    }
}
