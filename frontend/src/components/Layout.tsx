import { useState, type ReactNode } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { signOut, type User } from "../api";
import { Link, navigate, useLocation } from "../router";
import { END_SESSION_KEY, SESSION_KEY } from "../session";
import { applyTheme, savedTheme, type ThemeChoice } from "../theme";
import { PendingBadge } from "./PendingBadge";
import { Button, cx } from "./ui";

export function ThemeSelect() {
  const [theme, setTheme] = useState<ThemeChoice>(savedTheme);
  return (
    <label className="inline-flex items-center gap-1.5 text-sm text-slate-600 dark:text-slate-300">
      <span>Theme</span>
      <select
        value={theme}
        onChange={(e) => {
          const choice = e.target.value as ThemeChoice;
          setTheme(choice);
          applyTheme(choice);
        }}
        className="rounded-md border border-slate-300 bg-white px-1.5 py-1 text-sm dark:border-slate-600 dark:bg-slate-900"
      >
        <option value="system">System</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </label>
  );
}

function NavLink({ to, children }: { to: string; children: ReactNode }) {
  const { path } = useLocation();
  const active = path === to || path.startsWith(`${to}/`);
  return (
    <Link
      to={to}
      aria-current={active ? "page" : undefined}
      className={cx(
        "rounded-md px-3 py-1.5 text-sm font-medium",
        active
          ? "bg-indigo-100 text-indigo-900 dark:bg-indigo-950 dark:text-indigo-100"
          : "text-slate-700 hover:bg-slate-200 dark:text-slate-200 dark:hover:bg-slate-800",
      )}
    >
      {children}
    </Link>
  );
}

/** The signed-in frame. `fill`: the page takes the whole height below the header (the chat,
 * whose question box docks at the bottom). */
export function Layout({ user, fill = false, children }: { user: User; fill?: boolean; children: ReactNode }) {
  const client = useQueryClient();
  const [leaving, setLeaving] = useState(false);
  const leave = async () => {
    setLeaving(true);
    try {
      const endSession = await signOut();
      // Kept for the sign-in page to offer (never read from the URL: no open redirect).
      if (endSession) sessionStorage.setItem(END_SESSION_KEY, endSession);
    } catch {
      // Signed out or not, the page forgets the session.
    }
    client.clear();
    client.setQueryData(SESSION_KEY, null);
    navigate("/sign-in");
  };
  return (
    <div className="flex min-h-full flex-col">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2 focus:text-slate-900"
      >
        Skip to content
      </a>
      <header className="border-b border-slate-200 bg-white dark:border-slate-800 dark:bg-slate-900">
        <div className="mx-auto flex max-w-7xl flex-wrap items-center gap-x-4 gap-y-2 px-4 py-2">
          <Link to="/chat" className="mr-2 flex items-center gap-2 font-semibold tracking-tight">
            <img src="/favicon.svg" alt="" width={24} height={24} />
            Berth
          </Link>
          <nav aria-label="Main" className="order-3 flex w-full gap-1 overflow-x-auto sm:order-none sm:w-auto">
            <NavLink to="/chat">Chat</NavLink>
            <NavLink to="/documents">Documents</NavLink>
            {user.role === "admin" && (
              <NavLink to="/admin">
                Admin
                <PendingBadge />
              </NavLink>
            )}
            <NavLink to="/account">Account</NavLink>
          </nav>
          <div className="ml-auto flex items-center gap-3">
            <ThemeSelect />
            <span className="hidden text-sm text-slate-600 sm:inline dark:text-slate-300" title="Signed in as">
              {user.username}
            </span>
            <Button variant="ghost" size="sm" onClick={leave} busy={leaving}>
              Sign out
            </Button>
          </div>
        </div>
      </header>
      <main id="main" className={cx("mx-auto w-full min-w-0 max-w-7xl flex-1 px-4", fill ? "flex flex-col pb-0 pt-4" : "py-6")}>
        {children}
      </main>
    </div>
  );
}

/** The frame of the signed-out pages: a centred card. */
export function AuthFrame({ children }: { children: ReactNode }) {
  return (
    <div className="flex min-h-full flex-col">
      <div className="flex justify-end p-3">
        <ThemeSelect />
      </div>
      <main id="main" className="flex flex-1 items-start justify-center px-4 pb-16 pt-6 sm:pt-16">
        <div className="w-full max-w-sm">
          <div className="mb-6 flex items-center justify-center gap-2 text-2xl font-semibold tracking-tight">
            <img src="/favicon.svg" alt="" width={32} height={32} />
            Berth
          </div>
          <div className="rounded-lg border border-slate-200 bg-white p-6 shadow-sm dark:border-slate-800 dark:bg-slate-900">
            {children}
          </div>
        </div>
      </main>
    </div>
  );
}
