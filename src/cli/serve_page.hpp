// The chat page `qforge serve` serves at /: self-contained (no network beyond this server).
// ?q=TEXT sends TEXT while the page loads (used by the headless-browser test).
#pragma once

namespace qforge::cli {

inline constexpr const char* kChatPage = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>qforge chat</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{padding:10px 16px;background:#1d2330;color:#fff;display:flex;gap:16px;align-items:baseline}
header h1{font-size:17px;margin:0}#model{opacity:.75;font-size:13px}
#log{max-width:820px;margin:0 auto;padding:16px;display:flex;flex-direction:column;gap:10px;min-height:60vh}
.msg{padding:10px 12px;border-radius:8px;white-space:pre-wrap;line-height:1.4;max-width:90%}
.user{background:#dbe7ff;align-self:flex-end}.assistant{background:#fff;border:1px solid #dde1e8;align-self:flex-start}
.err{background:#ffe0e0}.stats{font-size:12px;color:#667;align-self:flex-start}
form{max-width:820px;margin:0 auto;padding:0 16px 16px;display:flex;gap:8px}
textarea{flex:1;font:inherit;padding:8px;border-radius:6px;border:1px solid #bbc;min-height:44px}
button{font:inherit;padding:8px 16px;border-radius:6px;border:0;background:#2f6fe4;color:#fff;cursor:pointer}
button:disabled{background:#99a}
</style></head><body>
<header><h1>qforge chat</h1><span id="model"></span><span id="speed"></span></header>
<div id="log"></div>
<form id="f"><textarea id="in" placeholder="Type a message; Enter sends, Shift+Enter a new line"></textarea><button id="send">Send</button></form>
<script>
"use strict";
const log = document.getElementById("log"), input = document.getElementById("in"), send = document.getElementById("send");
const history = [];
fetch("/v1/models").then(r => r.json()).then(j => { document.getElementById("model").textContent = j.data[0].id; }).catch(() => {});
function add(cls, text) { const d = document.createElement("div"); d.className = "msg " + cls; d.textContent = text; log.appendChild(d); return d; }
// Server-sent events in buf: each chat chunk's text to onPiece; returns what is left unparsed.
function events(buf, onPiece) {
  let i;
  while ((i = buf.indexOf("\n\n")) >= 0) {
    const ev = buf.slice(0, i); buf = buf.slice(i + 2);
    if (!ev.startsWith("data: ")) continue;
    const data = ev.slice(6); if (data === "[DONE]") continue;
    const j = JSON.parse(data), d = j.choices && j.choices[0] && j.choices[0].delta;
    if (d && d.content) onPiece(d.content);
  }
  return buf;
}
function stats(n, secs) {
  const s = document.createElement("div"); s.className = "stats";
  s.textContent = n + " tokens, " + (n > 1 && secs > 0 ? ((n - 1) / secs).toFixed(1) : "-") + " tokens/s";
  log.appendChild(s); document.getElementById("speed").textContent = s.textContent;
}
async function chat(text) {
  history.push({role: "user", content: text});
  add("user", text);
  const out = add("assistant", "");
  send.disabled = true;
  const t0 = performance.now(); let first = 0, n = 0, reply = "";
  try {
    const r = await fetch("/v1/chat/completions", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({messages: history, stream: true, max_tokens: 256})});
    if (!r.ok) { const j = await r.json(); throw new Error(j.error ? j.error.message : r.statusText); }
    const reader = r.body.getReader(), dec = new TextDecoder(); let buf = "";
    for (;;) {
      const {value, done} = await reader.read(); if (done) break;
      buf = events(buf + dec.decode(value, {stream: true}), piece => { if (!n) first = performance.now(); n++; reply += piece; out.textContent = reply; });
    }
    stats(n, (performance.now() - (first || t0)) / 1000);
    history.push({role: "assistant", content: reply});
  } catch (e) { out.className = "msg err"; out.textContent = "error: " + e.message; }
  send.disabled = false; input.focus();
}
document.getElementById("f").addEventListener("submit", e => { e.preventDefault(); const t = input.value.trim(); if (t) { input.value = ""; chat(t); } });
input.addEventListener("keydown", e => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send.click(); } });
// ?q=TEXT (a headless browser's test): the same stream read synchronously while the page loads,
// so that the page is complete when its load event fires.
const q = new URLSearchParams(location.search).get("q");
if (q) {
  history.push({role: "user", content: q}); add("user", q);
  const out = add("assistant", ""), x = new XMLHttpRequest(), t0 = performance.now(); let n = 0, reply = "";
  x.open("POST", "/v1/chat/completions", false); x.setRequestHeader("Content-Type", "application/json");
  x.send(JSON.stringify({messages: history, stream: true, max_tokens: 48, temperature: 0}));
  events(x.responseText, piece => { n++; reply += piece; out.textContent = reply; });
  stats(n, (performance.now() - t0) / 1000);
}
</script></body></html>
)HTML";

}  // namespace qforge::cli
