// Your sessions: end one, or sign out everywhere (which ends this one too).
import { api, errorText, leave, notify } from "./common.js";

for (const button of document.querySelectorAll("button[data-end-session]")) {
  button.addEventListener("click", async () => {
    const result = await api("DELETE", `/api/v1/sessions/${button.dataset.endSession}`);
    if (!result.ok) {
      notify(errorText(result));
      return;
    }
    button.closest("tr").remove();
  });
}

document.getElementById("sign-out-everywhere").addEventListener("click", async () => {
  leave();
  const result = await api("POST", "/api/v1/sessions/logout-everywhere");
  if (!result.ok) {
    notify(errorText(result));
    return;
  }
  window.location.assign("/sign-in");
});
