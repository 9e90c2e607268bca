// Passkeys in the browser: the WebAuthn calls (navigator.credentials.create and get) between
// the hub's API and the device, with the base64url conversions they need. Same origin only; no
// inline handlers (the Content-Security-Policy forbids them): behaviour hangs off data-
// attributes of the account page ([data-passkey-register]), the sign-in page
// ([data-passkey-sign-in]) and its second step ([data-passkey-second-factor]).
(function () {
  "use strict";

  function toBuffer(text) {
    var b64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var binary = window.atob(b64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) return null;
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(options) {
    var key = options.publicKey;
    key.challenge = toBuffer(key.challenge);
    key.user.id = toBuffer(key.user.id);
    (key.excludeCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
    return { publicKey: key };
  }

  function requestOptions(options) {
    var key = options.publicKey;
    key.challenge = toBuffer(key.challenge);
    (key.allowCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
    return { publicKey: key };
  }

  function extensions(credential) {
    return credential.getClientExtensionResults ? credential.getClientExtensionResults() : {};
  }

  function registration(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toText(response.attestationObject),
        clientDataJSON: toText(response.clientDataJSON),
        transports: response.getTransports ? response.getTransports() : undefined
      },
      extensions: extensions(credential)
    };
  }

  function assertion(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: toText(response.authenticatorData),
        clientDataJSON: toText(response.clientDataJSON),
        signature: toText(response.signature),
        userHandle: toText(response.userHandle)
      },
      extensions: extensions(credential)
    };
  }

  // A JSON POST to the hub's API; a problem+json answer becomes an Error with its detail.
  function post(url, body, csrf) {
    var headers = { "Content-Type": "application/json", "Accept": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    return window.fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: headers,
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(data.detail || data.title || "The request failed.");
        return data;
      });
    });
  }

  function explain(error) {
    if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) {
      return "The passkey dialog was closed or timed out. Try again.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This device already holds a passkey of yours for this hub.";
    }
    return (error && error.message) || "Something went wrong. Try again.";
  }

  function show(container, message) {
    var box = container.querySelector("[data-passkey-error]");
    if (!box) return;
    box.textContent = message;
    box.hidden = !message;
  }

  function supported() {
    return !!(window.PublicKeyCredential && navigator.credentials);
  }

  function register(container, button) {
    var input = container.querySelector("input");
    var name = input ? input.value.trim() : "";
    if (!name) {
      show(container, "Give the passkey a name first.");
      if (input) input.focus();
      return;
    }
    var csrf = container.getAttribute("data-csrf");
    var ceremony;
    button.disabled = true;
    show(container, "");
    post("/api/v1/me/passkeys/register/begin", { name: name }, csrf)
      .then(function (started) {
        ceremony = started.ceremony;
        return navigator.credentials.create(creationOptions(started.options));
      })
      .then(function (credential) {
        return post("/api/v1/me/passkeys/register/finish",
          { ceremony: ceremony, credential: registration(credential) }, csrf);
      })
      .then(function () { window.location.assign("/account?notice=passkey-added#passkeys"); })
      .catch(function (error) { show(container, explain(error)); button.disabled = false; });
  }

  function signIn(container, button) {
    var ceremony;
    button.disabled = true;
    show(container, "");
    post("/api/v1/auth/passkey/begin", {})
      .then(function (started) {
        ceremony = started.ceremony;
        return navigator.credentials.get(requestOptions(started.options));
      })
      .then(function (credential) {
        return post("/api/v1/auth/passkey/finish",
          { ceremony: ceremony, credential: assertion(credential) });
      })
      .then(function () { window.location.assign("/"); })
      .catch(function (error) { show(container, explain(error)); button.disabled = false; });
  }

  function secondFactor(container, button) {
    var pending = container.getAttribute("data-passkey-second-factor");
    button.disabled = true;
    show(container, "");
    post("/api/v1/auth/passkey/second-factor/begin", { pending_sign_in: pending })
      .then(function (started) {
        return navigator.credentials.get(requestOptions(started.options));
      })
      .then(function (credential) {
        return post("/api/v1/auth/passkey/second-factor/finish",
          { pending_sign_in: pending, credential: assertion(credential) });
      })
      .then(function () { window.location.assign("/"); })
      .catch(function (error) { show(container, explain(error)); button.disabled = false; });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-passkey-register-button]");
    if (button) {
      event.preventDefault();
      register(button.closest("[data-passkey-register]"), button);
      return;
    }
    button = event.target.closest("[data-passkey-sign-in-button]");
    if (button) {
      event.preventDefault();
      signIn(button.closest("[data-passkey-sign-in]"), button);
      return;
    }
    button = event.target.closest("[data-passkey-second-factor-button]");
    if (button) {
      event.preventDefault();
      secondFactor(button.closest("[data-passkey-second-factor]"), button);
    }
  });

  // Enter in the name field adds the passkey, as a form would.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter") return;
    var container = event.target.closest && event.target.closest("[data-passkey-register]");
    if (!container) return;
    event.preventDefault();
    var button = container.querySelector("[data-passkey-register-button]");
    if (button && !button.disabled) register(container, button);
  });

  // Without WebAuthn in this browser, say so instead of offering buttons that cannot work.
  function hideUnsupported() {
    if (supported()) return;
    var selector = "[data-passkey-register], [data-passkey-sign-in], [data-passkey-second-factor]";
    document.querySelectorAll(selector).forEach(function (container) {
      container.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      show(container, "This browser cannot use passkeys.");
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", hideUnsupported);
  } else {
    hideUnsupported();
  }
})();
