/**
 * Questions typed but not yet answered, kept in localStorage per conversation ("new" for one not
 * yet created), so that neither an expired session nor a failed request loses them. A draft is
 * removed once its question is answered.
 */

const PREFIX = "berth.draft.";
export const NEW_CONVERSATION = "new";

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    // Storage disabled (private mode in some browsers): drafts last as long as the page.
    return null;
  }
}

export function loadDraft(conversation: string): string {
  return storage()?.getItem(PREFIX + conversation) ?? "";
}

export function saveDraft(conversation: string, text: string): void {
  try {
    if (text.trim() === "") storage()?.removeItem(PREFIX + conversation);
    else storage()?.setItem(PREFIX + conversation, text);
  } catch {
    // Full or refused: the box still holds the text.
  }
}

/** Whether any question is kept (the sign-in page says so after a session expired). */
export function hasDrafts(): boolean {
  const s = storage();
  if (!s) return false;
  for (let i = 0; i < s.length; i += 1) {
    if (s.key(i)?.startsWith(PREFIX)) return true;
  }
  return false;
}
