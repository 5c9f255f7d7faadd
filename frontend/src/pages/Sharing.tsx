import { useState, type SubmitEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { Collection } from "../api";
import { Alert, Button, Card, ErrorAlert, Spinner, TextField } from "../components/ui";
import { navigate } from "../router";
import { useSession } from "../session";
import { addMember, listMembers, removeMember, setCollectionShared } from "../teamApi";

/**
 * Who shares a collection. The owner shares a private one, adds members by user name and removes
 * them; a member sees who else is in it and may leave.
 */
export function SharingPanel({ collection }: { collection: Collection }) {
  const client = useQueryClient();
  const myId = useSession().data?.user.id ?? "";
  const owner = collection.role === "owner";
  const [notice, setNotice] = useState<string | null>(null);
  const membersKey = ["members", collection.id];
  const members = useQuery({
    queryKey: membersKey,
    queryFn: () => listMembers(collection.id),
    enabled: collection.shared,
  });
  const refresh = () =>
    Promise.all([
      client.invalidateQueries({ queryKey: membersKey }),
      client.invalidateQueries({ queryKey: ["collections"] }),
    ]);
  const share = useMutation({
    mutationFn: () => setCollectionShared(collection.id, true),
    onSuccess: async () => {
      setNotice("The collection is shared. Add the people who should use it.");
      await refresh();
    },
  });
  const remove = useMutation({
    mutationFn: (member: { id: string; username: string }) => removeMember(collection.id, member.id),
    onSuccess: async (_, member) => {
      if (member.id === myId) {
        await client.invalidateQueries({ queryKey: ["collections"] });
        navigate("/documents");
        return;
      }
      setNotice(`${member.username} was removed; they no longer see this collection.`);
      await refresh();
    },
  });

  if (!collection.shared) {
    if (!owner) return null;
    return (
      <Card aria-label="Sharing">
        <h3 className="mb-1 text-sm font-semibold">Sharing</h3>
        <p className="mb-3 text-sm text-slate-600 dark:text-slate-300">
          Only you can see this collection. Share it to let members read, search, ask and upload.
        </p>
        <ErrorAlert error={share.error} className="mb-2" />
        <Button onClick={() => share.mutate()} busy={share.isPending}>
          Share with members
        </Button>
      </Card>
    );
  }

  return (
    <Card aria-label="Sharing">
      <h3 className="mb-2 text-sm font-semibold">Members</h3>
      {notice && (
        <Alert tone="success" className="mb-3">
          {notice}
        </Alert>
      )}
      <ErrorAlert error={members.error ?? remove.error} className="mb-2" />
      {members.isPending && <Spinner label="Loading members" />}
      {members.data?.length === 0 && (
        <p className="text-sm text-slate-600 dark:text-slate-300">
          {owner ? "No members yet: add someone by their user name." : "No other members."}
        </p>
      )}
      <ul className="mb-3 divide-y divide-slate-200 dark:divide-slate-800" aria-label="Members">
        {members.data?.map((m) => (
          <li key={m.id} className="flex items-center justify-between gap-2 py-1.5 text-sm">
            <span className="min-w-0 truncate">{m.username}</span>
            {(owner || m.id === myId) && (
              <Button
                size="sm"
                variant="danger"
                aria-label={m.id === myId ? "Leave this collection" : `Remove ${m.username}`}
                busy={remove.isPending && remove.variables.id === m.id}
                onClick={() => {
                  const question =
                    m.id === myId
                      ? `Leave “${collection.name}”? You will no longer see it.`
                      : `Remove ${m.username} from “${collection.name}”?`;
                  if (window.confirm(question)) remove.mutate(m);
                }}
              >
                {m.id === myId ? "Leave" : "Remove"}
              </Button>
            )}
          </li>
        ))}
      </ul>
      {owner && <AddMemberForm collectionId={collection.id} onAdded={(name) => {
        setNotice(`${name} is now a member and can use this collection.`);
        return refresh();
      }} />}
    </Card>
  );
}

function AddMemberForm({ collectionId, onAdded }: { collectionId: string; onAdded: (name: string) => Promise<unknown> }) {
  const [name, setName] = useState("");
  const add = useMutation({
    mutationFn: (username: string) => addMember(collectionId, username),
    onSuccess: async (_, username) => {
      setName("");
      await onAdded(username);
    },
  });
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    if (name.trim()) add.mutate(name.trim());
  };
  return (
    <form onSubmit={submit} className="flex flex-wrap items-end gap-2" aria-label="Add a member">
      <div className="min-w-0 flex-1">
        <TextField label="User name" value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" />
      </div>
      <Button type="submit" variant="primary" busy={add.isPending} disabled={name.trim() === ""}>
        Add member
      </Button>
      <ErrorAlert error={add.error} className="w-full" />
    </form>
  );
}
