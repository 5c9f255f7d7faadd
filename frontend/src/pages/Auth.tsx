import { useState, type SubmitEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { getPasswordPolicy, getSignInOptions, providerStartUrl, register, signIn, type Registered } from "../api";
import { AuthFrame } from "../components/Layout";
import { Alert, Button, ErrorAlert, PageTitle, TextField, capitalise } from "../components/ui";
import { Link, navigate, useLocation } from "../router";
import { hasDrafts } from "../drafts";
import { END_SESSION_KEY, SESSION_EXPIRED_KEY, SESSION_KEY } from "../session";

const NOTICES: Record<string, () => string> = {
  "password-changed": () => "Your password was changed and every session ended. Sign in with the new password.",
  "session-expired": () =>
    hasDrafts()
      ? "Your session expired — sign in again; your question is kept."
      : "Your session expired — sign in again.",
};

/** What a failed sign-in with an identity provider means, by the code Berth sends back. */
export function providerFailure(code: string, provider: string): string {
  switch (code) {
    case "pending_approval":
      return "Your account is waiting for an administrator's approval. Try again once they have approved it.";
    case "account_denied":
      return "An administrator declined this account.";
    case "account_disabled":
      return "This account is disabled. Ask an administrator.";
    case "expired":
      return `Sign-in with ${provider} failed: the sign-in took too long. Try again.`;
    case "bad_state":
      return `Sign-in with ${provider} failed: the answer did not belong to a sign-in started in this browser (used already, or started elsewhere). Try again.`;
    case "invalid_token":
      return `Sign-in with ${provider} failed: its answer did not pass Berth's checks. Try again; if it keeps failing, tell an administrator.`;
    case "provider_refused":
      return `Sign-in with ${provider} was cancelled or refused. Try again.`;
    case "provider_unavailable":
      return `Sign-in with ${provider} failed: ${provider} could not be reached. Try again later.`;
    default:
      return `Sign-in with ${provider} failed. Try again; if it keeps failing, tell an administrator.`;
  }
}

/** Only same-site paths, so a crafted link cannot send people elsewhere after signing in. */
export function safeNext(next: string | null): string {
  if (next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/sign-in")) return next;
  return "/chat";
}

export function SignInPage() {
  const client = useQueryClient();
  const { search } = useLocation();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const mutation = useMutation({
    mutationFn: () => signIn(username.trim(), password),
    onSuccess: (info) => {
      sessionStorage.removeItem(SESSION_EXPIRED_KEY);
      client.setQueryData(SESSION_KEY, info);
      navigate(safeNext(search.get("next")), { replace: true });
    },
  });
  const options = useQuery({ queryKey: ["sign-in-options"], queryFn: getSignInOptions, staleTime: Infinity });
  const [endSession] = useState(() => {
    const url = sessionStorage.getItem(END_SESSION_KEY);
    sessionStorage.removeItem(END_SESSION_KEY);
    return url;
  });
  const [notice] = useState(() => NOTICES[search.get("notice") ?? ""]?.());
  const failureCode = search.get("sign_in_error");
  const providers = options.data?.providers ?? [];
  const failedWith = providers.find((p) => p.id === search.get("provider"))?.display_name ?? "your organisation's account";
  // Until the options are known, the form shows (the usual case, and what works without them).
  const passwordLogin = options.data?.password_login ?? true;
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    mutation.mutate();
  };
  return (
    <AuthFrame>
      <PageTitle>Sign in</PageTitle>
      {endSession && (
        <Alert tone="info">
          You are signed out of Berth.{" "}
          <a href={endSession} className="font-medium underline">
            Sign out of your organisation&apos;s account too
          </a>
        </Alert>
      )}
      {failureCode && <Alert tone="error">{providerFailure(failureCode, failedWith)}</Alert>}
      {options.data?.needs_admin && (
        <Alert tone="warning" title="No administrator yet" className="mb-4">
          <p>
            Nobody can approve accounts until there is one. On the server, run{" "}
            <code className="whitespace-nowrap font-mono">berth admin create --username NAME</code>, then sign in
            with that name.
          </p>
        </Alert>
      )}
      {providers.length > 0 && (
        <div className="mb-4 space-y-2" aria-label="Sign in with">
          {providers.map((p) => (
            <a
              key={p.id}
              href={providerStartUrl(p.id)}
              className="block w-full rounded-md border border-slate-300 px-4 py-2 text-center text-sm font-medium hover:bg-slate-50 dark:border-slate-600 dark:hover:bg-slate-800"
            >
              Sign in with {p.display_name}
            </a>
          ))}
        </div>
      )}
      {passwordLogin && (
      <form onSubmit={submit} className="space-y-4" noValidate>
        {notice && <Alert tone="info">{notice}</Alert>}
        <ErrorAlert error={mutation.error} />
        <TextField
          label="User name"
          name="username"
          autoComplete="username"
          required
          value={username}
          onChange={(e) => setUsername(e.target.value)}
        />
        <TextField
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        <Button type="submit" variant="primary" className="w-full" busy={mutation.isPending}>
          Sign in
        </Button>
      </form>
      )}
      {passwordLogin && (
        <p className="mt-4 text-center text-sm text-slate-600 dark:text-slate-300">
          No account yet?{" "}
          <Link to="/register" className="font-medium text-indigo-700 underline dark:text-indigo-300">
            Register
          </Link>
        </p>
      )}
    </AuthFrame>
  );
}

export function PasswordRules() {
  const policy = useQuery({ queryKey: ["password-policy"], queryFn: getPasswordPolicy, staleTime: Infinity });
  if (!policy.data) return null;
  return (
    <div>
      <p>The password must:</p>
      <ul className="list-disc pl-5" aria-label="Password rules">
        {policy.data.rules.map((rule) => (
          <li key={rule}>{rule}</li>
        ))}
      </ul>
    </div>
  );
}

export function RegisterPage() {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [mismatch, setMismatch] = useState(false);
  const [done, setDone] = useState<Registered | null>(null);
  const mutation = useMutation({
    mutationFn: () => register(username.trim(), password),
    onSuccess: setDone,
  });
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    if (password !== confirm) {
      setMismatch(true);
      return;
    }
    setMismatch(false);
    mutation.mutate();
  };
  if (done) {
    return (
      <AuthFrame>
        <PageTitle>Awaiting approval</PageTitle>
        <Alert tone="success" title={`Registered as ${done.user.username}`}>
          <p>{capitalise(done.message)}.</p>
        </Alert>
        <p className="mt-4 text-sm text-slate-600 dark:text-slate-300">
          An admin has to approve your account before you can sign in. Try again once they have.
        </p>
        <p className="mt-4 text-center text-sm">
          <Link to="/sign-in" className="font-medium text-indigo-700 underline dark:text-indigo-300">
            Back to sign in
          </Link>
        </p>
      </AuthFrame>
    );
  }
  return (
    <AuthFrame>
      <PageTitle>Register</PageTitle>
      <form onSubmit={submit} className="space-y-4" noValidate>
        <ErrorAlert error={mutation.error} />
        <TextField
          label="User name"
          name="username"
          autoComplete="username"
          required
          value={username}
          onChange={(e) => setUsername(e.target.value)}
        />
        <TextField
          label="Password"
          name="new-password"
          type="password"
          autoComplete="new-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          hint={<PasswordRules />}
        />
        <TextField
          label="Repeat the password"
          name="confirm-password"
          type="password"
          autoComplete="new-password"
          required
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
          error={mismatch ? "The two passwords differ." : undefined}
        />
        <Button type="submit" variant="primary" className="w-full" busy={mutation.isPending}>
          Register
        </Button>
      </form>
      <p className="mt-4 text-center text-sm text-slate-600 dark:text-slate-300">
        Have an account?{" "}
        <Link to="/sign-in" className="font-medium text-indigo-700 underline dark:text-indigo-300">
          Sign in
        </Link>
      </p>
    </AuthFrame>
  );
}
