/** A tiny client for the agentq HTTP API, as a user's script would call it. */
export interface TaskJson {
  id: string;
  status: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
  attempts: number;
  max_attempts: number;
  result: { answer: string } | null;
  error: { code: string; message: string; retryable: boolean } | null;
  usage: { input_tokens: number; output_tokens: number; llm_calls: number; tool_calls: number };
  config: Record<string, unknown>;
  finished_at: string | null;
  started_at: string | null;
}

export interface EventJson {
  seq: number;
  type: string;
  data: Record<string, unknown>;
  created_at: string;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export function apiClient(baseUrl: string, token?: string) {
  const headers = (extra: Record<string, string> = {}) => ({
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...extra,
  });
  async function json<T>(res: Response): Promise<T> {
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new Error(`not JSON (${res.status}): ${text.slice(0, 200)}`);
    }
  }
  return {
    async submit(
      body: Record<string, unknown>,
    ): Promise<{ status: number; body: TaskJson & { error?: unknown } }> {
      const res = await fetch(`${baseUrl}/v1/tasks`, {
        method: 'POST',
        headers: headers({ 'content-type': 'application/json' }),
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await json(res) };
    },
    async get(id: string, waitS?: number): Promise<TaskJson> {
      const res = await fetch(
        `${baseUrl}/v1/tasks/${id}${waitS !== undefined ? `?wait=${waitS}` : ''}`,
        { headers: headers() },
      );
      if (res.status !== 200) throw new Error(`GET ${id}: ${res.status} ${await res.text()}`);
      return json(res);
    },
    /** Long-polls until the task is finished or `timeoutS` passes. */
    async waitDone(id: string, timeoutS = 60): Promise<TaskJson> {
      const deadline = Date.now() + timeoutS * 1000;
      for (;;) {
        const remaining = Math.ceil((deadline - Date.now()) / 1000);
        const task = await this.get(id, Math.max(0, Math.min(30, remaining)));
        if (TERMINAL.has(task.status) || remaining <= 0) return task;
      }
    },
    async events(id: string): Promise<EventJson[]> {
      const all: EventJson[] = [];
      let after = 0;
      for (;;) {
        const res = await fetch(`${baseUrl}/v1/tasks/${id}/events?after=${after}&limit=1000`, {
          headers: headers(),
        });
        const page = await json<{ data: EventJson[]; next_after: number }>(res);
        all.push(...page.data);
        if (page.data.length < 1000) return all;
        after = page.next_after;
      }
    },
    async cancel(id: string): Promise<{ status: number; body: unknown }> {
      const res = await fetch(`${baseUrl}/v1/tasks/${id}/cancel`, {
        method: 'POST',
        headers: headers(),
      });
      return { status: res.status, body: await json(res) };
    },
  };
}

export const isTerminal = (status: string) => TERMINAL.has(status);
