// Runs an Argo CD health check under the real Lua 5.1 interpreter (Debian's lua5.1; Argo CD embeds gopher-lua,
// a Lua 5.1 implementation), in the environment Argo CD gives a custom health check by default: the object as
// the global `obj`, the base, table and a safe os library, and no string, math, io or debug library — so a
// script that calls string.format or ("x"):lower() fails here as it would in Argo CD.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const LUA = 'lua5.1';

/** The statuses Argo CD accepts from a health script (gitops-engine pkg/health). */
export const ARGO_HEALTH_STATUSES = ['Healthy', 'Progressing', 'Degraded', 'Suspended', 'Missing', 'Unknown'] as const;

export interface HealthResult {
  /** Lua type of the script's return value. */
  type: string;
  /** Every field of the returned table: Lua type and value. */
  fields: Record<string, { type: string; value: string }>;
}

/** A Lua 5.1 string literal for any string: quotes, backslashes, control and non-ASCII bytes as \ddd escapes. */
function luaString(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, 'utf8')) {
    const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    out += printable ? String.fromCharCode(byte) : `\\${String(byte).padStart(3, '0')}`;
  }
  return `${out}"`;
}

/** A JSON value as a Lua table constructor, the way Argo CD hands the object to the script (null is nil). */
export function toLuaLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot express ${value} in Lua`);
    return String(value);
  }
  if (typeof value === 'string') return luaString(value);
  if (Array.isArray(value)) return `{${value.map(toLuaLiteral).join(', ')}}`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== null && v !== undefined);
    return `{${entries.map(([k, v]) => `[${luaString(k)}] = ${toLuaLiteral(v)}`).join(', ')}}`;
  }
  throw new Error(`cannot express a ${typeof value} in Lua`);
}

// Loads the script as a chunk, sandboxes it, runs it and prints its result as tab-separated lines. The harness
// itself may use the string library; the script may not.
const HARNESS = `
local chunk, err = loadstring(SCRIPT, "=health.lua")
if chunk == nil then
  io.stderr:write("compile error: " .. err .. "\\n")
  os.exit(2)
end
local env = { obj = OBJ, table = table, os = { time = os.time, date = os.date, clock = os.clock }, print = function() end }
for _, name in ipairs({ "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
    "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall", "_VERSION" }) do
  env[name] = _G[name]
end
env._G = env
setfenv(chunk, env)
local stringMethods = getmetatable("").__index
getmetatable("").__index = nil
local ok, hs = pcall(chunk)
getmetatable("").__index = stringMethods
if not ok then
  io.stderr:write("runtime error: " .. tostring(hs) .. "\\n")
  os.exit(3)
end
io.write("type\\t", type(hs), "\\n")
if type(hs) == "table" then
  for k, v in pairs(hs) do
    local text = string.gsub(tostring(v), "\\n", "\\\\n")
    io.write("field\\t", tostring(k), "\\t", type(v), "\\t", text, "\\n")
  end
end
`;

export async function runHealthCheck(script: string, obj: unknown): Promise<HealthResult> {
  const program = `local SCRIPT = ${luaString(script)}\nlocal OBJ = ${toLuaLiteral(obj)}\n${HARNESS}`;
  const run = promisify(execFile);
  let stdout: string;
  try {
    const child = run(LUA, ['-'], { timeout: 10_000 });
    child.child.stdin?.end(program);
    ({ stdout } = await child);
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${LUA} is not installed: run \`make deps\` (or apt-get install lua5.1)`, { cause: err });
    throw new Error(`the health check failed under ${LUA}: ${e.stderr ?? String(err)}`, { cause: err });
  }
  const result: HealthResult = { type: '', fields: {} };
  for (const line of stdout.split('\n')) {
    const [kind, key = '', type = '', ...rest] = line.split('\t');
    if (kind === 'type') result.type = key;
    if (kind === 'field') result.fields[key] = { type, value: rest.join('\t') };
  }
  return result;
}
