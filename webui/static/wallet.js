// GridLedger's browser wallet glue: Sign-In with Ethereum (EIP-4361) through any EIP-1193
// wallet, mandates signed with eth_signTypedData_v4, and the demo's local test wallets.
// Loaded in <head>, before the page's scripts, so a demo wallet is window.ethereum for them.
(function () {
  "use strict";
  var DEMO_KEY = "gridledger-demo-home";
  var demoSign = document.querySelector('meta[name="gridledger-demo-sign"]');
  var acting = null;
  try { acting = JSON.parse(sessionStorage.getItem(DEMO_KEY) || "null"); } catch (e) { acting = null; }

  // The demo's test wallet: an EIP-1193 provider whose signatures the demo server makes
  // with the demo home's key (derived from public data; see webui/wallet.py).
  if (!window.ethereum && demoSign && acting) {
    window.ethereum = {
      isGridLedgerDemo: true,
      request: function (args) {
        var method = args.method, params = args.params || [];
        if (method === "eth_requestAccounts" || method === "eth_accounts") return Promise.resolve([acting.address]);
        if (method === "personal_sign" || method === "eth_signTypedData_v4") {
          return fetch(demoSign.content, {method: "POST", headers: {"Content-Type": "application/json"},
            body: JSON.stringify({participant: acting.participant, method: method, params: params})})
            .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.status); return j.signature; }); });
        }
        return Promise.reject(new Error("the demo wallet does not do " + method));
      }
    };
  }

  function hex(text) {
    var bytes = new TextEncoder().encode(text), out = "0x";
    for (var i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, "0");
    return out;
  }
  function postJson(url, body) {
    return fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body), credentials: "same-origin"})
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || String(r.status)); return j; }); });
  }
  function say(id, text, good) {
    var box = document.getElementById(id);
    if (!box) { if (!good) alert(text); return; }
    box.className = "notice " + (good ? "good" : "bad"); box.textContent = text; box.hidden = false;
  }

  function signIn() {
    var urls = document.body.dataset, address;
    return window.ethereum.request({method: "eth_requestAccounts"}).then(function (accounts) {
      address = accounts[0];
      return postJson(urls.authMessage, {address: address});
    }).then(function (answer) {
      return window.ethereum.request({method: "personal_sign", params: [hex(answer.message), address]})
        .then(function (signature) { return postJson(urls.authVerify, {message: answer.message, signature: signature}); });
    }).then(function () { location.reload(); })
      .catch(function (e) { say("wallet-result", "Not signed in: " + (e.message || e), false); });
  }

  function signMandate(form) {
    var query = new URLSearchParams(new FormData(form)).toString();
    fetch(form.dataset.prepare + "?" + query).then(function (r) {
      return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.status); return j; });
    }).then(function (prepared) {
      return window.ethereum.request({method: "eth_requestAccounts"}).then(function (accounts) {
        if ((accounts[0] || "").toLowerCase() !== prepared.owner.toLowerCase()) {
          throw new Error("the wallet's account " + accounts[0] + " does not own this participant (" + prepared.owner + ")");
        }
        return window.ethereum.request({method: "eth_signTypedData_v4", params: [accounts[0], JSON.stringify(prepared.typed)]});
      }).then(function (signature) { return postJson(form.dataset.api, {mandate: prepared.typed.message, signature: signature}); });
    }).then(function (accepted) {
      say("mandate-result", "Mandate " + accepted.nonce + " of participant #" + accepted.participant + " stored; the oracle relays it to the chain.", true);
    }).catch(function (e) { say("mandate-result", "Mandate not stored: " + (e.message || e), false); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-sign-in]").forEach(function (button) {
      if (!window.ethereum) { button.disabled = true; document.querySelectorAll("[data-no-wallet]").forEach(function (h) { h.hidden = false; }); }
      button.addEventListener("click", signIn);
    });
    document.querySelectorAll("[data-sign-out]").forEach(function (button) {
      button.addEventListener("click", function () { postJson(document.body.dataset.authLogout, {}).then(function () { location.reload(); }); });
    });
    document.querySelectorAll("[data-act-as-chosen]").forEach(function (button) {
      button.addEventListener("click", function () {
        var chosen = document.getElementById("act-as-home").selectedOptions[0];
        sessionStorage.setItem(DEMO_KEY, JSON.stringify({participant: Number(chosen.value), address: chosen.dataset.address,
                                                         name: chosen.dataset.name}));
        location.reload();
      });
    });
    document.querySelectorAll("[data-act-as]").forEach(function (button) {  // "stop"
      button.addEventListener("click", function () { sessionStorage.removeItem(DEMO_KEY); location.reload(); });
    });
    if (acting && window.ethereum && window.ethereum.isGridLedgerDemo) {
      document.querySelectorAll("[data-acting]").forEach(function (p) { p.hidden = false; });
      document.querySelectorAll("[data-acting-name]").forEach(function (n) { n.textContent = acting.name; });
    }
    var mandate = document.getElementById("mandate-form");
    if (mandate) mandate.addEventListener("submit", function (ev) { ev.preventDefault(); signMandate(mandate); });
  });
})();
