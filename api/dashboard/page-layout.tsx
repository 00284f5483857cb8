/**
 * The frame every dashboard page shares: header and navigation, the token
 * form (hidden until the client script needs it), and the one script and
 * stylesheet, both served by the API (no CDN). The pages carry no task data:
 * the script fetches it with the bearer token the browser keeps.
 */
import type { Child } from 'hono/jsx';

export type PageName = 'tasks' | 'task' | 'workers';

export interface LayoutProps {
  title: string;
  page: PageName;
  /** Tokens are configured: the script asks for one before its first request. */
  authRequired: boolean;
  children?: Child;
}

const NAV: Array<{ href: string; label: string; pages: PageName[] }> = [
  { href: '/', label: 'Tasks', pages: ['tasks', 'task'] },
  { href: '/workers', label: 'Workers & queue', pages: ['workers'] },
  { href: '/docs', label: 'API docs', pages: [] },
];

export function PageLayout({ title, page, authRequired, children }: LayoutProps) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} · agentq`}</title>
        <link rel="icon" href="/dashboard/assets/icon.svg" type="image/svg+xml" />
        <link rel="stylesheet" href="/dashboard/assets/dashboard.css" />
        <script type="module" src="/dashboard/assets/dashboard.js"></script>
      </head>
      <body data-page={page} data-auth={authRequired ? 'token' : 'none'}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <a class="brand" href="/">
            agentq
          </a>
          <nav aria-label="Main">
            <ul>
              {NAV.map((item) => (
                <li>
                  <a href={item.href} aria-current={item.pages.includes(page) ? 'page' : undefined}>
                    {item.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <span id="access" class="access" hidden></span>
          <button id="forget-token" type="button" class="link" hidden>
            Forget token
          </button>
        </header>
        <section id="token-panel" class="token-panel" hidden aria-labelledby="token-title">
          <h2 id="token-title">Token needed</h2>
          <p id="token-reason">
            This server needs an API token (one of AGENTQ_API_TOKENS, or AGENTQ_API_READ_TOKENS for
            read-only access). It is kept in this browser only.
          </p>
          <form id="token-form">
            <label for="token-input">API token</label>
            <input
              id="token-input"
              name="token"
              type="password"
              autocomplete="off"
              required
              spellcheck={false}
            />
            <button type="submit">Use token</button>
          </form>
        </section>
        <main id="main" tabindex={-1} hidden>
          {children}
        </main>
        <p id="flash" class="flash" role="status" aria-live="polite"></p>
        <noscript>
          <p class="flash">This dashboard needs JavaScript; the API itself is at /docs.</p>
        </noscript>
      </body>
    </html>
  );
}
