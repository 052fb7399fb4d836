// Supabase edge function calling keymux with plain fetch (OpenAI chat format).
// Secrets: supabase secrets set KEYMUX_URL=https://keymux.example.com KEYMUX_KEY=sk-keymux-...
const KEYMUX_URL = Deno.env.get("KEYMUX_URL")!;
const KEYMUX_KEY = Deno.env.get("KEYMUX_KEY")!;

Deno.serve(async (req) => {
  const { prompt } = await req.json();
  const res = await fetch(`${KEYMUX_URL}/v1/chat/completions`, {
    method: "POST",
    headers: { "Authorization": `Bearer ${KEYMUX_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ model: "gemini-chat", messages: [{ role: "user", content: prompt }] }),
  });
  if (res.status === 429) {
    // keymux already waited up to queue_timeout for a free key; Retry-After says when one frees up.
    // Pass it on rather than retrying at once: a retry before then is refused the same way.
    const retryAfter = res.headers.get("Retry-After") ?? "60";
    return Response.json({ error: "busy, try again later", retryAfter: Number(retryAfter) },
      { status: 503, headers: { "Retry-After": retryAfter } });
  }
  if (!res.ok) {
    // 503 without Retry-After: every key is disabled (invalid, leaked, suspended); 401: wrong KEYMUX_KEY.
    const { error } = await res.json();
    return Response.json({ error: error?.message ?? res.statusText }, { status: 502 });
  }
  const data = await res.json();
  return Response.json({ text: data.choices[0].message.content });
});
