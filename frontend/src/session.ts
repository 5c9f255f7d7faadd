import { useQuery, type QueryClient } from "@tanstack/react-query";
import { getSession, setUnauthenticatedHandler, type SessionInfo } from "./api";

export const SESSION_KEY = ["session"] as const;

/** The signed-in user (null: nobody), shared by every page. */
export function useSession() {
  return useQuery<SessionInfo | null>({
    queryKey: SESSION_KEY,
    queryFn: ({ signal }) => getSession(signal),
    staleTime: 5 * 60_000,
  });
}

/** When any call answers 401 the session is over: forget it, so the sign-in page shows. */
export function watchForSignOut(client: QueryClient): void {
  setUnauthenticatedHandler(() => {
    if (client.getQueryData(SESSION_KEY)) {
      // The sign-in page says why it shows, and that a typed question was kept.
      sessionStorage.setItem(SESSION_EXPIRED_KEY, "1");
      client.setQueryData(SESSION_KEY, null);
      client.removeQueries({ predicate: (q) => q.queryKey[0] !== SESSION_KEY[0] });
    }
  });
}

/** sessionStorage key: the identity provider's sign-out page, offered after signing out of Berth. */
export const END_SESSION_KEY = "berth.endSessionUrl";

/** sessionStorage key: set when a signed-in session ended under the user (a 401), for the
 * sign-in page to say so. */
export const SESSION_EXPIRED_KEY = "berth.sessionExpired";
