// Supabase edge function calling keymux with Google's @google/genai SDK (Gemini API format, passed through).
// Secrets: supabase secrets set KEYMUX_URL=https://keymux.example.com KEYMUX_KEY=sk-keymux-...
import { ApiError, GoogleGenAI } from "npm:@google/genai";

const ai = new GoogleGenAI({
  apiKey: Deno.env.get("KEYMUX_KEY")!, // keymux's master key, not a Google key
  httpOptions: { baseUrl: Deno.env.get("KEYMUX_URL")!, apiVersion: "v1beta" },
});

Deno.serve(async (req) => {
  const { prompt } = await req.json();
  try {
    const result = await ai.models.generateContent({ model: "gemini-chat", contents: prompt });
    return Response.json({ text: result.text });
  } catch (e) {
    if (e instanceof ApiError && e.status === 429) {
      // No key frees up within keymux's queue_timeout: tell the caller to come back later. The SDK's error
      // does not carry keymux's Retry-After header; use fetch (keymux-chat) when the caller needs the exact wait.
      return Response.json({ error: "busy, try again later" }, { status: 503, headers: { "Retry-After": "60" } });
    }
    throw e;
  }
});
