//! The Lua scripts of the session layout (see the module docs of `backend::redis`).

use redis::Script;

/// A script that works on sessions: `buckets.lua` and `common.lua` (packing, figures,
/// conversion, repair), then its own Lua (`include_str!` of its file, or the text itself).
macro_rules! session_script {
    ($($own:tt)+) => {
        redis::Script::new(concat!(
            include_str!("buckets.lua"),
            include_str!("common.lua"),
            $($own)+
        ))
    };
}
pub(super) use session_script;

/// The session scripts. `turn.lua` takes only `buckets.lua` in front: it needs none of
/// `common.lua`, and an EVALSHA pays for every function its script defines.
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
            append: session_script!(include_str!("append.lua")),
            turn: Script::new(concat!(
                include_str!("buckets.lua"),
                include_str!("turn.lua")
            )),
            load: session_script!(include_str!("load.lua")),
            delete: session_script!(include_str!("delete.lua")),
            title: session_script!(include_str!("title.lua")),
            convert: session_script!(include_str!("convert.lua")),
        }
    }
}
