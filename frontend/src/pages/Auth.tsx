import { useState, type SubmitEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { getPasswordPolicy, register, signIn, type Registered } from "../api";
import { AuthFrame } from "../components/Layout";
import { Alert, Button, ErrorAlert, PageTitle, TextField, capitalise } from "../components/ui";
import { Link, navigate, useLocation } from "../router";
import { SESSION_KEY } from "../session";

const NOTICES: Record<string, string> = {
  "password-changed": "Your password was changed and every session ended. Sign in with the new password.",
};

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
      client.setQueryData(SESSION_KEY, info);
      navigate(safeNext(search.get("next")), { replace: true });
    },
  });
  const notice = NOTICES[search.get("notice") ?? ""];
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    mutation.mutate();
  };
  return (
    <AuthFrame>
      <PageTitle>Sign in</PageTitle>
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
      <p className="mt-4 text-center text-sm text-slate-600 dark:text-slate-300">
        No account yet?{" "}
        <Link to="/register" className="font-medium text-indigo-700 underline dark:text-indigo-300">
          Register
        </Link>
      </p>
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
