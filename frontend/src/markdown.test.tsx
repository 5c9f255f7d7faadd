import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/react";
import { Markdown, safeHref } from "./markdown";

function html(text: string): HTMLElement {
  const { container } = render(<Markdown text={text} />);
  return container;
}

describe("Markdown", () => {
  it("renders headings, emphasis, lists, code and tables as elements, not as marks", () => {
    const c = html(
      "#### Opening hours\n\nThe gates **open** at *dawn* and `close` at dusk.\n\n- one\n- two\n  - nested\n\n1. first\n2. second\n\n```sh\necho <b>hi</b>\n```\n\n| day | open |\n|---|---|\n| Mon | 8 |",
    );
    expect(c.querySelector("h6")).toHaveTextContent("Opening hours");
    expect(c.textContent).not.toContain("####");
    expect(c.querySelector("strong")).toHaveTextContent("open");
    expect(c.querySelector("em")).toHaveTextContent("dawn");
    expect(c.querySelector("p code")).toHaveTextContent("close");
    expect(c.querySelectorAll("ul > li")).toHaveLength(3);
    expect(c.querySelector("ul ul li")).toHaveTextContent("nested");
    expect(c.querySelectorAll("ol > li")).toHaveLength(2);
    expect(c.querySelector("pre code")?.textContent).toBe("echo <b>hi</b>");
    expect(c.querySelector("pre b")).toBeNull();
    expect(screen.getByRole("button", { name: "Copy code (sh)" })).toBeInTheDocument();
    expect(c.querySelector("table td")).toHaveTextContent("Mon");
  });

  it("never lets raw HTML from the text reach the page", () => {
    const c = html('<script>alert(1)</script>\n\n<img src=x onerror="alert(2)">\n\n**<iframe src="https://evil.test">**');
    expect(c.querySelector("script, img, iframe")).toBeNull();
    expect(c.textContent).toContain("<script>alert(1)</script>");
    expect(c.textContent).toContain('<img src=x onerror="alert(2)">');
  });

  it("keeps only http(s) and mailto links", () => {
    const c = html("[site](https://example.com/a) [mail](mailto:a@example.com) [bad](javascript:alert(1)) [data](data:text/html,x) https://berth.test/doc.");
    const links = [...c.querySelectorAll("a")].map((a) => a.getAttribute("href"));
    expect(links).toEqual(["https://example.com/a", "mailto:a@example.com", "https://berth.test/doc"]);
    expect(c.textContent).toContain("bad");
    expect(c.querySelector("a")).toHaveAttribute("rel", "noopener noreferrer nofollow");
    expect(safeHref("JAVASCRIPT:alert(1)")).toBeNull();
    expect(safeHref("/relative")).toBeNull();
  });

  it("gives every piece of plain text to renderText, inside any element", () => {
    const seen: string[] = [];
    render(
      <Markdown
        text={"- item [1]\n\n**bold [2]**"}
        renderText={(t, key) => {
          seen.push(t);
          return <span key={key}>{t}</span>;
        }}
      />,
    );
    expect(seen).toEqual(["item [1]", "bold [2]"]);
  });

  it("shows an unclosed fence (an answer still streaming) as code", () => {
    const c = html("Here:\n\n```\nlet x = 1;");
    expect(c.querySelector("pre code")?.textContent).toBe("let x = 1;");
  });
});
