import { useState, type SubmitEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { getStatus } from "../api";
import { Alert, Button, Card, ErrorAlert, SelectField, Spinner, TextField, formatTime } from "../components/ui";
import { changeRuntimeSettings, getRuntimeSettings, type RuntimeSetting } from "../teamApi";

/** What each run-time setting is, for people. */
const FIELDS: { key: string; label: string; hint: string; kind: "text" | "number" | "bool" }[] = [
  { key: "llm_model", label: "LLM model", hint: "The model answers come from, on the configured LLM server.", kind: "text" },
  { key: "retrieval_k", label: "Passages per question", hint: "How many passages a question retrieves (1 to 50).", kind: "number" },
  {
    key: "retrieval_lexical_weight",
    label: "Full-text weight",
    hint: "Weight of word matches in hybrid search (0 to 100).",
    kind: "number",
  },
  {
    key: "retrieval_vector_weight",
    label: "Meaning weight",
    hint: "Weight of semantic similarity in hybrid search (0 to 100).",
    kind: "number",
  },
  { key: "registration_open", label: "Registration", hint: "Whether people may register accounts (which wait for approval).", kind: "bool" },
];

function source(s: RuntimeSetting): string {
  if (s.source === "admin") {
    return `Changed here by ${s.updated_by ?? "an admin"}, ${formatTime(s.updated_at)}; the server's value is ${s.default ?? "unset"}.`;
  }
  return "From the server's settings (file, environment or default).";
}

/** Settings an admin changes while Berth runs; each takes effect at once and is audited. */
export function RuntimeSettings() {
  const client = useQueryClient();
  const settings = useQuery({ queryKey: ["runtime-settings"], queryFn: getRuntimeSettings });
  const status = useQuery({ queryKey: ["status"], queryFn: getStatus, staleTime: 60_000 });
  // Only what was edited; everything else shows the value in effect.
  const [form, setForm] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState(false);
  const save = useMutation({
    mutationFn: changeRuntimeSettings,
    onSuccess: async (data) => {
      client.setQueryData(["runtime-settings"], data);
      setForm({});
      setSaved(true);
      await client.invalidateQueries({ queryKey: ["status"] });
    },
  });
  const byKey = new Map(settings.data?.map((s) => [s.key, s]) ?? []);
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    setSaved(false);
    const changes: Record<string, string> = {};
    for (const [key, value] of Object.entries(form)) {
      const current = byKey.get(key);
      if (current && current.value !== null && value.trim() !== current.value) changes[key] = value.trim();
    }
    if (Object.keys(changes).length > 0) save.mutate(changes);
  };
  if (settings.isPending) return <Spinner label="Loading settings" />;
  if (!settings.data) return <ErrorAlert error={settings.error} />;
  return (
    <div className="space-y-4">
      <Card aria-label="Run-time settings">
        <form onSubmit={submit} className="space-y-4" aria-label="Settings">
          <p className="text-sm text-slate-600 dark:text-slate-300">
            These take effect at once, on every Berth instance, and each change is in the audit log. The server’s
            settings stay the defaults.
          </p>
          {saved && <Alert tone="success">Saved. The new values are in effect.</Alert>}
          <ErrorAlert error={save.error} />
          {FIELDS.map((f) => {
            const s = byKey.get(f.key);
            if (!s) return null;
            const value = form[f.key] ?? s.value ?? "";
            const set = (v: string) => setForm({ ...form, [f.key]: v });
            const unavailable = s.value === null;
            return (
              <div key={f.key} className="space-y-1" data-testid={`setting-${f.key}`}>
                {f.kind === "bool" ? (
                  <SelectField label={f.label} value={value} onChange={(e) => set(e.target.value)}>
                    <option value="true">Open</option>
                    <option value="false">Closed</option>
                  </SelectField>
                ) : (
                  <TextField
                    label={f.label}
                    value={unavailable ? "" : value}
                    disabled={unavailable}
                    inputMode={f.kind === "number" ? "decimal" : undefined}
                    onChange={(e) => set(e.target.value)}
                  />
                )}
                <p className="text-xs text-slate-600 dark:text-slate-300">
                  {unavailable ? "No LLM server is configured (llm_url), so there is no model to name." : f.hint}
                </p>
                <p className="text-xs text-slate-600 dark:text-slate-300" data-testid="setting-source">
                  {source(s)}{" "}
                  {s.source === "admin" && (
                    <Button
                      size="sm"
                      variant="ghost"
                      aria-label={`Use the server's value for ${f.label}`}
                      onClick={() => {
                        setSaved(false);
                        save.mutate({ [f.key]: null });
                      }}
                    >
                      {"Use the server's value"}
                    </Button>
                  )}
                </p>
              </div>
            );
          })}
          <Button type="submit" variant="primary" busy={save.isPending}>
            Save settings
          </Button>
        </form>
      </Card>
      <Card aria-label="Embedding model">
        <h2 className="mb-1 text-sm font-semibold">Embedding model</h2>
        <p className="text-sm">{status.data?.embeddings.model ?? "none (search matches words only)"}</p>
        <p className="text-xs text-slate-600 dark:text-slate-300">
          From the server’s settings (embed_model). Changing it means re-reading every document, so it is set there
          and takes effect at the next start.
        </p>
      </Card>
    </div>
  );
}
