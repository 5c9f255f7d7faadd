/** Light/dark theme: follow the system (the default) or a saved choice, applied as
 * `data-theme` on <html> (public/theme.js applies the saved one before the first paint). */

export type ThemeChoice = "system" | "light" | "dark";

const KEY = "berth-theme";

export function savedTheme(): ThemeChoice {
  try {
    const value = window.localStorage.getItem(KEY);
    return value === "light" || value === "dark" ? value : "system";
  } catch {
    return "system";
  }
}

export function applyTheme(choice: ThemeChoice): void {
  const root = document.documentElement;
  if (choice === "system") root.removeAttribute("data-theme");
  else root.setAttribute("data-theme", choice);
  try {
    if (choice === "system") window.localStorage.removeItem(KEY);
    else window.localStorage.setItem(KEY, choice);
  } catch {
    // Storage blocked: the choice lasts for this page only.
  }
}
