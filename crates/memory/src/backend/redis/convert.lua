-- One step of converting a v1 session to the v2 layout (common.lua, convert_step).
-- KEYS: list, hash, index, usage, v1log, v1meta, v1ids
-- Returns 1 when the session holds no v1 data any more, 0 when more steps are needed.
if rare().convert_step(session_keys(), STEP_BYTES) then
  return 1
end
return 0
