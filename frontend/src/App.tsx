import { useEffect } from "react";
import { Layout } from "./components/Layout";
import { Alert, Button, ErrorAlert, PageTitle, Spinner } from "./components/ui";
import { AccountPage } from "./pages/Account";
import { AdminPage, type AdminTab } from "./pages/Admin";
import { RegisterPage, SignInPage } from "./pages/Auth";
import { ChatPage } from "./pages/Chat";
import { DocumentsPage } from "./pages/Documents";
import { DocumentViewer } from "./pages/DocumentViewer";
import { Link, matchPath, navigate, useLocation } from "./router";
import { SESSION_EXPIRED_KEY, useSession } from "./session";
import type { User } from "./api";

const ADMIN_TABS: AdminTab[] = ["approvals", "users", "audit", "settings"];

/** Replaces the URL after render (never during it). */
function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

function SignedIn({ user, path, search }: { user: User; path: string; search: URLSearchParams }) {
  if (path === "/" || path === "/sign-in" || path === "/register") return <Redirect to="/chat" />;
  if (path === "/chat") return <ChatPage />;
  const chat = matchPath("/chat/:id", path);
  if (chat) return <ChatPage conversationId={chat.id} />;
  if (path === "/documents") return <DocumentsPage />;
  const collection = matchPath("/collections/:id", path);
  if (collection?.id !== undefined) return <DocumentsPage collectionId={collection.id} />;
  const doc = matchPath("/documents/:id", path)?.id;
  if (doc !== undefined) {
    const passage = Number(search.get("passage") ?? Number.NaN);
    return <DocumentViewer key={doc} documentId={doc} {...(Number.isInteger(passage) ? { passage } : {})} />;
  }
  if (path === "/account") return <AccountPage user={user} />;
  if (path === "/admin" || path.startsWith("/admin/")) {
    if (user.role !== "admin") {
      return (
        <>
          <PageTitle>Administration</PageTitle>
          <Alert tone="error">Only admins can see this page.</Alert>
        </>
      );
    }
    const tab = matchPath("/admin/:tab", path)?.tab as AdminTab | undefined;
    if (tab === undefined || !ADMIN_TABS.includes(tab)) return <Redirect to="/admin/approvals" />;
    return <AdminPage tab={tab} me={user} />;
  }
  return (
    <>
      <PageTitle>Page not found</PageTitle>
      <p className="text-sm">
        There is no page at <code>{path}</code>.{" "}
        <Link to="/chat" className="text-indigo-700 underline dark:text-indigo-300">
          Go to chat
        </Link>
      </p>
    </>
  );
}

export function App() {
  const session = useSession();
  const { path, search } = useLocation();

  if (session.isPending) {
    return (
      <div className="flex h-full items-center justify-center">
        <Spinner label="Loading Berth" />
      </div>
    );
  }
  if (session.isError) {
    return (
      <div className="mx-auto max-w-md space-y-3 p-8">
        <ErrorAlert error={session.error} />
        <Button onClick={() => void session.refetch()}>Try again</Button>
      </div>
    );
  }
  const info = session.data;
  if (!info) {
    if (path === "/register") return <RegisterPage />;
    if (path !== "/sign-in") {
      const query = new URLSearchParams();
      if (path !== "/") query.set("next", path + (search.size ? `?${search.toString()}` : ""));
      if (sessionStorage.getItem(SESSION_EXPIRED_KEY)) query.set("notice", "session-expired");
      return <Redirect to={`/sign-in${query.size ? `?${query.toString()}` : ""}`} />;
    }
    return <SignInPage />;
  }
  return (
    <Layout user={info.user} fill={path === "/chat" || path.startsWith("/chat/")}>
      <SignedIn user={info.user} path={path} search={search} />
    </Layout>
  );
}
