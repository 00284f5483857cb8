// http_get: the allowlist, the address policy on every hop, and the limits,
// against real HTTP servers on 127.0.0.1 (reached through an injected lookup
// and, where the fetch should succeed, an injected permissive policy).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createHttpGetTool,
  httpGetTool,
  type ResolvedAddress,
} from '../../worker/tools/http-get.ts';
import { runTool } from '../../worker/tools/registry.ts';
import { ToolError, type ToolContext } from '../../worker/tools/tool.ts';

const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function serve(handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A resolver for made-up names, so no test touches real DNS. */
function fakeDns(table: Record<string, string[]>) {
  const asked: string[] = [];
  const lookup = async (host: string): Promise<ResolvedAddress[]> => {
    asked.push(host);
    const addresses = table[host];
    if (!addresses)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { lookup, asked };
}

function context(httpAllowlist: string[], signal = new AbortController().signal): ToolContext {
  return { signal, httpAllowlist };
}

const dns = fakeDns({
  'allowed.test': ['127.0.0.1'],
  'evil.test': ['127.0.0.1'],
  'inner.test': ['10.0.0.5'],
});
/** Lets the test server on 127.0.0.1 through; everything else uses the real rules. */
const permissive = createHttpGetTool({
  lookup: dns.lookup,
  isAddressAllowed: () => true,
  timeoutMs: 2000,
});

describe('http_get refuses before connecting', () => {
  const tool = createHttpGetTool({ lookup: dns.lookup });

  it('is off when the allowlist is empty', async () => {
    await expect(httpGetTool.run({ url: 'https://example.com/' }, context([]))).rejects.toThrow(
      /turned off/,
    );
  });

  it.each([
    ['https://example.com/', ['example.org'], /host "example.com" is not allowed/],
    ['https://example.com/', ['*.example.com'], /not allowed/],
    ['https://badexample.com/', ['*.example.com'], /not allowed/],
    ['https://example.com.evil.test/', ['example.com'], /not allowed/],
    ['https://example.com:8443/', ['example.com'], /"example.com:8443" is not allowed/],
    ['http://example.com:443/', ['example.com'], /not allowed/],
    ['https://example.com:8443/', ['example.com:9443'], /not allowed/],
    ['ftp://example.com/', ['example.com'], /only http and https/],
    ['file:///etc/passwd', ['example.com'], /only http and https/],
    ['http://user:pw@example.com/', ['example.com'], /credentials/],
    ['not a url', ['example.com'], /not a valid absolute URL/],
  ])('%s with allowlist %j', async (url, allowlist, message) => {
    const asked = dns.asked.length;
    await expect(tool.run({ url }, context(allowlist))).rejects.toThrow(message);
    expect(dns.asked.length).toBe(asked);
  });

  it('refuses an allowlisted host that resolves to loopback (default policy)', async () => {
    const error = tool.run({ url: 'http://allowed.test/' }, context(['allowed.test']));
    await expect(error).rejects.toThrow(ToolError);
    await expect(error).rejects.toThrow(
      /"allowed.test": it resolves to 127.0.0.1, which is not a public address/,
    );
  });

  it('refuses when any one of the addresses is private', async () => {
    const mixed = createHttpGetTool({
      lookup: fakeDns({ 'mixed.test': ['93.184.216.34', '::ffff:10.0.0.1'] }).lookup,
    });
    await expect(mixed.run({ url: 'http://mixed.test/' }, context(['mixed.test']))).rejects.toThrow(
      /::ffff:10.0.0.1/,
    );
  });

  it.each([
    ['http://127.0.0.1/', '127.0.0.1'],
    ['http://[::1]/', '[::1]'],
    ['http://[::ffff:127.0.0.1]/', '[::ffff:7f00:1]'],
    ['http://169.254.169.254/latest/meta-data/', '169.254.169.254'],
    ['http://0.0.0.0/', '0.0.0.0'],
  ])('refuses the literal address in %s even when allowlisted', async (url, entry) => {
    await expect(httpGetTool.run({ url }, context([entry]))).rejects.toThrow(
      /not a public address/,
    );
  });

  it('matches subdomain wildcards (the policy then refuses the loopback address)', async () => {
    const subdomains = createHttpGetTool({
      lookup: fakeDns({ 'api.example.com': ['127.0.0.1'] }).lookup,
    });
    await expect(
      subdomains.run({ url: 'http://API.example.com/' }, context(['*.example.com'])),
    ).rejects.toThrow(/not a public address/);
  });

  it('reports a name that does not resolve', async () => {
    await expect(
      tool.run({ url: 'http://nowhere.test/' }, context(['nowhere.test'])),
    ).rejects.toThrow(/could not resolve host "nowhere.test"/);
  });
});

describe('http_get against a local server', () => {
  it('fetches text, connecting to the vetted address', async () => {
    let host: string | undefined;
    const port = await serve((req, res) => {
      host = req.headers.host;
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('hello, agent ✓');
    });
    await expect(
      permissive.run({ url: `http://allowed.test:${port}/hi` }, context([`allowed.test:${port}`])),
    ).resolves.toEqual({
      url: `http://allowed.test:${port}/hi`,
      status: 200,
      content_type: 'text/plain; charset=utf-8',
      body: 'hello, agent ✓',
      truncated: false,
    });
    expect(host).toBe(`allowed.test:${port}`);
  });

  it('returns JSON and error statuses as they are', async () => {
    const port = await serve((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/problem+json' }).end('{"title":"missing"}');
    });
    const out = await permissive.run(
      { url: `http://allowed.test:${port}/` },
      context([`allowed.test:${port}`]),
    );
    expect(out).toMatchObject({ status: 404, body: '{"title":"missing"}', truncated: false });
  });

  it('decodes the declared charset', async () => {
    const port = await serve((_req, res) => {
      res
        .writeHead(200, { 'content-type': 'text/plain; charset=ISO-8859-1' })
        .end(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    });
    const out = await permissive.run(
      { url: `http://allowed.test:${port}/` },
      context([`allowed.test:${port}`]),
    );
    expect(out).toMatchObject({ body: 'café' });
  });

  it('truncates a body over the cap', async () => {
    const port = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      const chunk = 'a'.repeat(64 * 1024);
      for (let i = 0; i < 16; i++) res.write(chunk);
      res.end();
    });
    const out = (await permissive.run(
      { url: `http://allowed.test:${port}/` },
      context([`allowed.test:${port}`]),
    )) as {
      body: string;
      truncated: boolean;
    };
    expect(out.truncated).toBe(true);
    expect(out.body.length).toBe(200 * 1024);

    const small = createHttpGetTool({
      lookup: dns.lookup,
      isAddressAllowed: () => true,
      maxBytes: 1000,
    });
    const cut = await small.run(
      { url: `http://allowed.test:${port}/` },
      context([`allowed.test:${port}`]),
    );
    expect(cut).toMatchObject({ body: 'a'.repeat(1000), truncated: true });
  });

  it.each([['image/png'], ['application/octet-stream'], ['application/pdf'], [undefined]])(
    'refuses the content type %s',
    async (type) => {
      const port = await serve((_req, res) => {
        res.writeHead(200, type ? { 'content-type': type } : {}).end('\x89PNG');
      });
      await expect(
        permissive.run({ url: `http://allowed.test:${port}/` }, context([`allowed.test:${port}`])),
      ).rejects.toThrow(/refusing content type/);
    },
  );

  it('follows up to 3 redirects and reports where it ended', async () => {
    const port = await serve((req, res) => {
      const hop = Number(req.url?.slice(1) || 0);
      if (hop < 3) res.writeHead(302, { location: `/${hop + 1}` }).end();
      else res.writeHead(200, { 'content-type': 'text/plain' }).end(`arrived after ${hop}`);
    });
    const out = await permissive.run(
      { url: `http://allowed.test:${port}/` },
      context([`allowed.test:${port}`]),
    );
    expect(out).toMatchObject({ url: `http://allowed.test:${port}/3`, body: 'arrived after 3' });
  });

  it('gives up after too many redirects', async () => {
    const port = await serve((_req, res) => {
      res.writeHead(301, { location: '/again' }).end();
    });
    await expect(
      permissive.run({ url: `http://allowed.test:${port}/` }, context([`allowed.test:${port}`])),
    ).rejects.toThrow(/too many redirects/);
  });

  it('refuses a redirect to a host outside the allowlist', async () => {
    let evilHits = 0;
    const port = await serve((req, res) => {
      if (req.headers.host?.startsWith('evil.test')) evilHits++;
      res
        .writeHead(302, {
          location: `http://evil.test:${(req.socket.address() as AddressInfo).port}/`,
        })
        .end();
    });
    await expect(
      permissive.run({ url: `http://allowed.test:${port}/` }, context([`allowed.test:${port}`])),
    ).rejects.toThrow(/host "evil.test:\d+" is not allowed/);
    expect(evilHits).toBe(0);
  });

  it('re-checks addresses on each hop', async () => {
    // The first host may connect to the test server; the redirect target is
    // allowlisted but resolves to a private address.
    const tool = createHttpGetTool({
      lookup: dns.lookup,
      isAddressAllowed: (ip) => ip === '127.0.0.1',
    });
    const port = await serve((_req, res) => {
      res.writeHead(307, { location: 'http://inner.test/' }).end();
    });
    await expect(
      tool.run(
        { url: `http://allowed.test:${port}/` },
        context([`allowed.test:${port}`, 'inner.test']),
      ),
    ).rejects.toThrow(/"inner.test": it resolves to 10.0.0.5/);
  });

  it('times out on a server that never answers', async () => {
    const port = await serve(() => {});
    const tool = createHttpGetTool({
      lookup: dns.lookup,
      isAddressAllowed: () => true,
      timeoutMs: 200,
    });
    const started = Date.now();
    await expect(
      tool.run({ url: `http://allowed.test:${port}/` }, context([`allowed.test:${port}`])),
    ).rejects.toThrow(/timed out after 0.2 s/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('times out on a body that stalls', async () => {
    const port = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
    });
    const tool = createHttpGetTool({
      lookup: dns.lookup,
      isAddressAllowed: () => true,
      timeoutMs: 200,
    });
    await expect(
      tool.run({ url: `http://allowed.test:${port}/` }, context([`allowed.test:${port}`])),
    ).rejects.toThrow(/timed out/);
  });

  it('stops when the context is aborted, rethrowing its reason', async () => {
    const controller = new AbortController();
    const reason = new Error('task cancelled');
    const port = await serve(() => controller.abort(reason));
    const allowlist = [`allowed.test:${port}`];
    await expect(
      permissive.run(
        { url: `http://allowed.test:${port}/` },
        context(allowlist, controller.signal),
      ),
    ).rejects.toBe(reason);
    // Through the registry too: the abort is the one thing runTool rethrows.
    await expect(
      runTool(
        'http_get',
        { url: `http://allowed.test:${port}/` },
        context(allowlist, controller.signal),
      ),
    ).rejects.toBe(reason);
  });

  it('reports a refused connection as a ToolError', async () => {
    const port = await serve(() => {});
    await new Promise((resolve) => servers.pop()!.close(resolve));
    await expect(
      permissive.run({ url: `http://allowed.test:${port}/` }, context([`allowed.test:${port}`])),
    ).rejects.toThrow(/failed: .*ECONNREFUSED/);
  });
});
