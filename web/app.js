// app.js: sosnode's page. Chat in rooms through this node's HTTP API (the seed's API), with
// the end-to-end crypto of sosctl and the seed's app, and the node's state for its operator.
//
// Crypto, byte-compatible with sosctl (protocol/sos_e2e.c) and the seed's app:
//   room_hash = first 16 hex characters of SHA-256(emojis joined with no separator)
//   key       = Argon2id v1.3 (opslimit 2, memlimit 64 MiB, 32 bytes) of "EMOJIS:PIN",
//               salt = first 16 bytes of SHA-256("sos-chat-v1:EMOJIS:" + floor(created_at))
//   content   = base64(24-byte nonce || XSalsa20-Poly1305 secretbox of the UTF-8 text)
import sodium from "/js/libsodium-wrappers.mjs";

const EMOJIS = ["🆘", "🏠", "🔥", "💧", "🌍", "⭐", "🌙", "🍞", "🚑", "📻", "🔦", "🧭",
                "🐈", "🌳", "🎈", "🔑", "🚲", "⚓", "🌈", "🍎", "🎵", "📚", "🕊️", "❤️"];
const $ = (id) => document.getElementById(id);

let room = null; // {hash, emojis, key, memberId, since, expiresAt, alive}

function showError(text) { $("error").textContent = text || ""; }

async function api(method, path, body) {
  const resp = await fetch(path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await resp.json().catch(() => ({ error: "bad_reply" }));
  if (!resp.ok || data.error) {
    const err = new Error(data.error || ("HTTP " + resp.status));
    err.code = data.error;
    err.retryAfter = data.retry_after;
    throw err;
  }
  return data;
}

function roomHash(emojis) {
  return sodium.to_hex(sodium.crypto_hash_sha256(sodium.from_string(emojis))).slice(0, 16);
}

function deriveKey(emojis, pin, createdAt) {
  const saltText = "sos-chat-v1:" + emojis + ":" + Math.floor(createdAt);
  const salt = sodium.crypto_hash_sha256(sodium.from_string(saltText)).slice(0, 16);
  return sodium.crypto_pwhash(32, sodium.from_string(emojis + ":" + pin), salt, 2,
                              64 * 1024 * 1024, sodium.crypto_pwhash_ALG_ARGON2ID13);
}

function seal(key, text) {
  const nonce = sodium.randombytes_buf(24);
  const box = sodium.crypto_secretbox_easy(sodium.from_string(text), nonce, key);
  const all = new Uint8Array(nonce.length + box.length);
  all.set(nonce);
  all.set(box, nonce.length);
  return sodium.to_base64(all, sodium.base64_variants.ORIGINAL);
}

function open(key, content) {
  try {
    const all = sodium.from_base64(content, sodium.base64_variants.ORIGINAL);
    if (all.length < 24 + 16) return null;
    const text = sodium.crypto_secretbox_open_easy(all.slice(24), all.slice(0, 24), key);
    return sodium.to_string(text);
  } catch (e) {
    return null;
  }
}

// ---------------------------------------------------------------- chat ----

function chosenEmojis() { return $("emojis").value.trim(); }

function updatePreview() {
  const e = chosenEmojis();
  $("room-hash-preview").textContent = e && sodium.ready ? roomHash(e) : "";
}

function addMessage(m) {
  const div = document.createElement("div");
  const text = open(room.key, m.content);
  div.className = "msg" + (text === null ? " undecryptable" : "");
  div.dataset.seq = m.seq;
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = new Date(m.timestamp * 1000).toLocaleTimeString();
  const sender = document.createElement("span");
  sender.className = "sender";
  sender.textContent = m.sender;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text === null ? "🔒 this message cannot be decrypted (wrong emojis or PIN?)"
                                   : text;
  div.append(time, sender, body);
  $("messages").append(div);
  $("messages").scrollTop = $("messages").scrollHeight;
}

function showRoom(data) {
  $("room-form").classList.add("hidden");
  $("room").classList.remove("hidden");
  $("room-title").textContent = room.emojis;
  $("room-hash").textContent = room.hash;
  $("members").textContent = data.members.join(", ");
  room.expiresAt = data.expires_at;
}

async function pollLoop() {
  while (room && room.alive) {
    try {
      const q = await api("GET", `/room/${room.hash}/poll?since=${room.since}` +
                                 `&member_id=${room.memberId}&wait=15000`);
      if (!room || !room.alive) return;
      for (const m of q.messages) {
        addMessage(m);
        room.since = m.timestamp;
      }
      $("members").textContent = q.members.join(", ");
      room.expiresAt = q.expires_at;
    } catch (e) {
      showError("poll: " + e.message);
      if (e.code === "room_not_found" || e.code === "not_member") { room.alive = false; return; }
      await new Promise((r) => setTimeout(r, 1500));
    }
  }
}

async function enter(create) {
  showError("");
  const emojis = chosenEmojis();
  const pin = $("pin").value;
  if (!emojis || !pin) { showError("choose emojis and a PIN"); return; }
  const hash = roomHash(emojis);
  const nickname = $("nickname").value.trim() || undefined;
  try {
    const data = create
      ? await api("POST", "/room", { room_hash: hash, nickname, emojis: [...segment(emojis)] })
      : await api("POST", `/room/${hash}/join`, { nickname });
    $("crypto-state").textContent = "deriving the room key…";
    await new Promise((r) => setTimeout(r, 0));
    const key = deriveKey(emojis, pin, data.created_at);
    $("crypto-state").textContent = "end-to-end encrypted";
    room = { hash, emojis, key, memberId: data.member_id, since: 0, alive: true };
    showRoom(data);
    pollLoop();
  } catch (e) {
    showError(e.code === "rate_limited" ? `wait ${e.retryAfter} s before creating a room`
                                        : e.message);
  }
}

// Emoji as the user sees them (grapheme clusters), for the room's listed emojis.
function segment(text) {
  if (typeof Intl !== "undefined" && Intl.Segmenter) {
    return Array.from(new Intl.Segmenter().segment(text), (s) => s.segment);
  }
  return Array.from(text);
}

async function send(ev) {
  ev.preventDefault();
  const text = $("message").value;
  if (!text || !room) return;
  try {
    await api("POST", `/room/${room.hash}/send`, { member_id: room.memberId,
                                                    content: seal(room.key, text) });
    $("message").value = "";
  } catch (e) {
    showError("send: " + e.message);
  }
}

async function leave() {
  if (!room) return;
  room.alive = false;
  api("POST", `/room/${room.hash}/leave`, { member_id: room.memberId }).catch(() => {});
  room = null;
  $("messages").textContent = "";
  $("room").classList.add("hidden");
  $("room-form").classList.remove("hidden");
}

function tick() {
  if (room && room.expiresAt) {
    const left = Math.max(0, Math.floor(room.expiresAt - Date.now() / 1000));
    $("time-left").textContent = `${Math.floor(left / 60)} min ${left % 60} s`;
  }
}

// ------------------------------------------------------------ operator ----

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    td.textContent = c;
    tr.append(td);
  }
  return tr;
}

async function refreshNode() {
  if ($("node").classList.contains("hidden")) return;
  try {
    const st = await api("GET", "/status");
    $("node-id").textContent = st.node_id;
    $("endpoint").textContent = st.endpoint;
    $("http-url").textContent = st.http_url;
    $("version").textContent = st.version;
    $("uptime").textContent = st.uptime_s + " s";
    $("counts").textContent = `${st.workers} / ${st.rooms}`;
    const counters = $("counters").tBodies[0];
    counters.textContent = "";
    for (const group of ["gossip", "drops", "http"]) {
      for (const [k, v] of Object.entries(st[group] || {})) counters.append(row([`${group}.${k}`, v]));
    }
    const w = await api("GET", "/workers");
    const body = $("workers").tBodies[0];
    body.textContent = "";
    for (const x of w.workers) {
      body.append(row([x.url, (x.node_id || "").slice(0, 12),
                       x.last_ok ? new Date(x.last_ok * 1000).toLocaleTimeString() : "never",
                       x.fail_count, x.is_genesis ? "yes" : ""]));
    }
  } catch (e) {
    showError("status: " + e.message);
  }
}

function tab(name) {
  $("chat").classList.toggle("hidden", name !== "chat");
  $("node").classList.toggle("hidden", name !== "node");
  refreshNode();
}

async function main() {
  for (const e of EMOJIS) {
    const b = document.createElement("button");
    b.textContent = e;
    b.dataset.emoji = e;
    b.addEventListener("click", () => { $("emojis").value += e; updatePreview(); });
    $("emoji-picker").append(b);
  }
  $("emojis").addEventListener("input", updatePreview);
  $("emojis-clear").addEventListener("click", () => { $("emojis").value = ""; updatePreview(); });
  $("create").addEventListener("click", () => enter(true));
  $("join").addEventListener("click", () => enter(false));
  $("send-form").addEventListener("submit", send);
  $("leave").addEventListener("click", leave);
  $("tab-chat").addEventListener("click", () => tab("chat"));
  $("tab-node").addEventListener("click", () => tab("node"));
  if (location.hash === "#node") tab("node");
  setInterval(tick, 1000);
  setInterval(refreshNode, 2000);
  await sodium.ready;
  $("crypto-state").textContent = "crypto ready";
  document.body.dataset.ready = "1";
  updatePreview();
}

main().catch((e) => { $("crypto-state").textContent = "crypto unavailable: " + e.message; });
