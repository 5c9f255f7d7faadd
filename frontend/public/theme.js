// Applies the saved theme choice ("light" or "dark"; absent: follow the system) before the
// first paint, so a dark-mode user never sees a white flash.
try {
  var saved = window.localStorage.getItem("berth-theme");
  if (saved === "light" || saved === "dark") {
    document.documentElement.setAttribute("data-theme", saved);
  }
} catch (_) {
  // Storage can be blocked; the system preference still applies.
}
