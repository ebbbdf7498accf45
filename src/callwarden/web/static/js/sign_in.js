// The sign-in steps: password, then the MFA code or the MFA set-up (QR code drawn by the
// server, the key as text) and its recovery codes. Each step's answer carries a new CSRF token.
import { api, clearNotice, errorText, notify, setCsrfToken } from "./common.js";

const steps = ["step-password", "step-mfa", "step-enrol", "step-codes"];

function show(step) {
  for (const id of steps) document.getElementById(id).hidden = id !== step;
  const first = document.querySelector(`#${step} input, #${step} button`);
  first?.focus();
}

/** Where to go once signed in: the page that asked for sign-in (a path of this site, checked
 *  by the server), or the start. */
function proceed() {
  if (window.location.pathname === "/sign-in") {
    window.location.assign(document.getElementById("sign-in").dataset.next || "/");
  } else window.location.reload();
}

async function startEnrolment() {
  const result = await api("POST", "/api/v1/mfa/enroll", {});
  if (!result.ok) {
    notify(errorText(result));
    return;
  }
  document.getElementById("mfa-secret").textContent = result.body.secret;
  const qr = await api("POST", "/sign-in/qr", { uri: result.body.provisioning_uri });
  if (qr.ok) {
    const svg = new DOMParser().parseFromString(qr.body, "image/svg+xml").documentElement;
    svg.setAttribute("role", "img");
    document.getElementById("qr").replaceChildren(document.importNode(svg, true));
  }
  show("step-enrol");
}

function afterSession(state) {
  setCsrfToken(state.csrf_token);
  if (state.mfa_complete) proceed();
  else if (state.mfa_enrolment_needed) startEnrolment();
  else show("step-mfa");
}

document.getElementById("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearNotice();
  const form = event.currentTarget;
  const result = await api("POST", "/api/v1/sessions", {
    username: form.elements.username.value,
    password: form.elements.password.value,
  });
  form.elements.password.value = "";
  if (!result.ok) {
    notify(errorText(result));
    return;
  }
  afterSession(result.body);
});

document.getElementById("mfa-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearNotice();
  const input = event.currentTarget.elements.code;
  const result = await api("POST", "/api/v1/sessions/mfa/verify", { code: input.value.trim() });
  input.value = "";
  if (!result.ok) {
    notify(errorText(result));
    return;
  }
  afterSession(result.body);
});

document.getElementById("enrol-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearNotice();
  const input = event.currentTarget.elements.code;
  const result = await api("POST", "/api/v1/mfa/confirm", { code: input.value.trim() });
  input.value = "";
  if (!result.ok) {
    notify(errorText(result));
    return;
  }
  if (result.body.session) setCsrfToken(result.body.session.csrf_token);
  const list = document.getElementById("recovery-codes");
  list.replaceChildren(
    ...result.body.recovery_codes.map((code) => {
      const item = document.createElement("li");
      item.textContent = code;
      return item;
    }),
  );
  show("step-codes");
});

document.getElementById("codes-done").addEventListener("click", proceed);

// A session still waiting for its MFA step (a reload, or a page that asked for sign-in): the
// server says which step (asking the API would log a 401 in the console when there is none).
const step = document.getElementById("sign-in").dataset.step;
if (step !== "password") {
  const current = await api("GET", "/api/v1/sessions/current");
  if (current.ok) afterSession(current.body);
}
