import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { ApiError } from "./api";
import { App } from "./App";
import { installDropGuard } from "./dropGuard";
import { watchForSignOut } from "./session";
import "./index.css";

const client = new QueryClient({
  defaultOptions: {
    queries: {
      // A 4xx will not change on its own; other failures get two more tries.
      retry: (count, err) => !(err instanceof ApiError && err.status >= 400 && err.status < 500) && count < 2,
      staleTime: 10_000,
    },
    mutations: { retry: false },
  },
});
watchForSignOut(client);
installDropGuard();

const root = document.getElementById("root");
if (!root) throw new Error("index.html has no #root element");
createRoot(root).render(
  <StrictMode>
    <QueryClientProvider client={client}>
      <App />
    </QueryClientProvider>
  </StrictMode>,
);
