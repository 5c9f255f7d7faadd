/** The question box, docked at the bottom of the chat; what failed is said next to it, with
 * Retry, and the question stays in the box. */

import { forwardRef, type KeyboardEvent, type ReactNode, type SubmitEvent } from "react";
import { Button } from "../../components/ui";

export const Composer = forwardRef<
  HTMLTextAreaElement,
  {
    text: string;
    onText: (text: string) => void;
    disabled: boolean;
    onSend: (question: string) => void;
    onStop: (() => void) | undefined;
    /** Shown just above the box: a failure with its Retry, an upload's progress. */
    notice?: ReactNode;
  }
>(function Composer({ text, onText, disabled, onSend, onStop, notice }, ref) {
  const send = () => {
    const question = text.trim();
    if (!question || disabled) return;
    onSend(question);
  };
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    send();
  };
  const keyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    }
  };
  return (
    <form
      onSubmit={submit}
      aria-label="Ask a question"
      className="sticky bottom-0 z-10 -mx-4 mt-4 border-t border-slate-200 bg-slate-50 px-4 pb-3 pt-2 sm:mx-0 sm:px-0 dark:border-slate-800 dark:bg-slate-950"
    >
      {notice}
      <label htmlFor="question" className="sr-only">
        Your question
      </label>
      <div className="flex items-end gap-2">
        <textarea
          ref={ref}
          id="question"
          rows={2}
          value={text}
          onChange={(e) => onText(e.target.value)}
          onKeyDown={keyDown}
          placeholder="Ask about your documents…"
          aria-describedby="question-hint"
          className="block min-w-0 flex-1 resize-y rounded-md border border-slate-300 bg-white px-3 py-2 text-sm dark:border-slate-600 dark:bg-slate-900"
        />
        {onStop ? (
          <Button onClick={onStop}>Stop</Button>
        ) : (
          <Button type="submit" variant="primary" disabled={disabled || text.trim() === ""}>
            Send
          </Button>
        )}
      </div>
      <p id="question-hint" className="mt-1 text-xs text-slate-600 dark:text-slate-400">
        Enter sends; Shift+Enter starts a new line. Drop a file here to add it to your documents.
      </p>
    </form>
  );
});
