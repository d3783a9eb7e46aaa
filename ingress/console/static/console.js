// smsrouter console: the two things a page cannot do without a script, and
// works without: refresh the traffic list, and count a message's SMS parts.
"use strict";

// GSM 7-bit costs exactly as asteriskconf/smsq/gsm7.go (app_sms's table): 1
// septet, 2 for the escaped ones, 0 when the character cannot be coded.
var gsm7One = "@£$¥èéùìòç\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
var gsm7Two = "\f^{}\\[~]|€";

function gsm7Cost(ch) {
  if (gsm7Two.indexOf(ch) >= 0) return 2;
  if (gsm7One.indexOf(ch) >= 0) return 1;
  return 0;
}

// smsCount mirrors smsq.Split: one coding for the whole text, 160/153
// septets or 70/67 UTF-16 units, an escape or surrogate pair never cut.
// parts is 0 when more than maxParts would be needed.
function smsCount(text, maxParts) {
  if (!(maxParts >= 1 && maxParts <= 255)) maxParts = 255;
  var chars = Array.from(text);
  var gsm = true, units = 0;
  for (var i = 0; i < chars.length; i++) {
    var c = gsm7Cost(chars[i]);
    if (c === 0) { gsm = false; break; }
    units += c;
  }
  var cost, single, limit;
  if (gsm) {
    cost = gsm7Cost; single = 160; limit = 153;
  } else {
    cost = function (ch) { return ch.length; }; single = 70; limit = 67;
    units = 0;
    for (var j = 0; j < chars.length; j++) units += chars[j].length;
  }
  var r = { coding: gsm ? "GSM 7-bit" : "UCS-2", chars: chars.length, units: units, parts: 1 };
  if (units <= single) return r;
  var parts = 1, used = 0;
  for (var k = 0; k < chars.length; k++) {
    var n = cost(chars[k]);
    if (used + n > limit) {
      if (parts >= maxParts) { r.parts = 0; return r; }
      parts++; used = 0;
    }
    used += n;
  }
  r.parts = parts;
  return r;
}

function counter() {
  var ta = document.querySelector("textarea[data-max-parts]");
  var out = document.getElementById("counter");
  if (!ta || !out) return;
  var max = parseInt(ta.getAttribute("data-max-parts"), 10);
  function show() {
    var r = smsCount(ta.value, max);
    var per = r.coding === "UCS-2" ? (r.units <= 70 ? 70 : 67) : (r.units <= 160 ? 160 : 153);
    out.textContent = r.chars + " characters, " + r.coding + ", " + r.units + (r.coding === "UCS-2" ? " units" : " septets") +
      (r.parts ? ", " + r.parts + " SMS (" + per + " per part)" : ": too long, more than " + max + " SMS");
    out.className = r.parts ? "counter" : "counter over";
  }
  ta.addEventListener("input", show);
  show();
}

function live() {
  var box = document.getElementById("live");
  if (!box) return;
  var src = box.getAttribute("data-src");
  function refresh() {
    if (document.hidden) return;
    fetch(src, { credentials: "same-origin", redirect: "manual" }).then(function (r) {
      if (r.status === 200) return r.text();
      if (r.type === "opaqueredirect") location.reload(); // logged out: show the login
      return null;
    }).then(function (html) {
      if (html !== null && html !== undefined) box.innerHTML = html;
    }).catch(function () {});
  }
  setInterval(refresh, 2000);
}

if (typeof document !== "undefined") {
  counter();
  live();
}
if (typeof module !== "undefined") module.exports = { smsCount: smsCount };
