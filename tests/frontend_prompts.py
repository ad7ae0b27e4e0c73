# ruff: noqa: E501, W291 - the prompts are copied verbatim
"""Frontends' task prompts, copied from their sources: Open WebUI's
(backend/open_webui/config.py, DEFAULT_*_PROMPT_TEMPLATE; ``{history}`` stands for its
``{{MESSAGES:END:n}}``, rendered as its utils/misc.py does: ``ROLE: content`` lines) and
LibreChat's (danny-avila/agents src/utils/title.ts, and the older titlePrompts.js)."""

QUESTION = "What range do the ATACMS missiles have?"
HISTORY = f"USER: {QUESTION}\nASSISTANT: The missiles can reach 190 miles [1]."

OWUI_TITLE = """### Task:
Generate a concise title summarizing the chat history.
### Guidelines:
- The title should clearly represent the main theme or subject of the conversation.
- Keep it short: 2-4 words is best.
- Do not use emojis, quotation marks, or special formatting.
- Write the title in the chat's primary language; default to English if multilingual.
- Prioritize accuracy over creativity.
- Your entire response must consist solely of the JSON object, without any introductory or concluding text.
- The output must be a single, raw JSON object, without any markdown code fences or other encapsulating text.
- Ensure no conversational text, affirmations, or explanations precede or follow the raw JSON output, as this will cause direct parsing failure.
### Output:
JSON format: { "title": "your concise title here" }
### Examples:
- { "title": "Stock Trends" },
- { "title": "Chocolate Chip Cookies" },
- { "title": "Music Streaming" },
- { "title": "Remote Work" }
### Chat History:
<chat_history>
{history}
</chat_history>"""

OWUI_TITLE_OLD = OWUI_TITLE.replace(
    "Generate a concise title summarizing the chat history.",
    "Generate a concise, 3-5 word title with an emoji summarizing the chat history.")

OWUI_TAGS = """### Task:
Generate 1-3 broad tags categorizing the main themes of the chat history, along with 1-3 more specific subtopic tags.

### Guidelines:
- Start with high-level domains (e.g. Science, Technology, Philosophy, Arts, Politics, Business, Health, Sports, Entertainment, Education)
- Consider including relevant subfields/subdomains if they are strongly represented throughout the conversation
- If content is too short (less than 3 messages) or too diverse, use only ["General"]
- Use the chat's primary language; default to English if multilingual
- Prioritize accuracy over specificity

### Output:
JSON format: { "tags": ["tag1", "tag2", "tag3"] }

### Chat History:
<chat_history>
{history}
</chat_history>"""

OWUI_FOLLOW_UPS = """### Task:
Suggest 3-5 relevant follow-up questions or prompts that the user might naturally ask next in this conversation as a **user**, based on the chat history, to help continue or deepen the discussion.
### Guidelines:
- Write all follow-up questions from the user’s point of view, directed to the assistant.
- Make questions concise, clear, and directly related to the discussed topic(s).
- Only suggest follow-ups that make sense given the chat content and do not repeat what was already covered.
- If the conversation is very short or not specific, suggest more general (but relevant) follow-ups the user might ask.
- Use the conversation's primary language; default to English if multilingual.
- Response must be a JSON object with a "follow_ups" key containing an array of strings, no extra text or formatting.
### Output:
JSON format: { "follow_ups": ["Question 1?", "Question 2?", "Question 3?"] }
### Chat History:
<chat_history>
{history}
</chat_history>"""

OWUI_QUERIES = """### Task:
Analyze the chat history to determine the necessity of generating search queries, in the given language. By default, **prioritize generating 1-3 broad and relevant search queries** unless it is absolutely certain that no additional information is required. The aim is to retrieve comprehensive, updated, and valuable information even with minimal uncertainty. If no search is unequivocally needed, return an empty list.

### Guidelines:
- Respond **EXCLUSIVELY** with a JSON object. Any form of extra commentary, explanation, or additional text is strictly prohibited.
- When generating search queries, respond in the format: { "queries": ["query1", "query2"] }, ensuring each query is distinct, concise, and relevant to the topic.
- If and only if it is entirely certain that no useful results can be retrieved by a search, return: { "queries": [] }.

### Output:
Strictly return in JSON format: 
{
  "queries": ["query1", "query2"]
}

### Chat History:
<chat_history>
{history}
</chat_history>"""

OWUI_AUTOCOMPLETE = """### Task:
You are an autocompletion system. Continue the text in `<text>` based on the **completion type** in `<type>` and the given language.  

### **Output Rules**:
- Respond only in JSON format: `{ "text": "<your_completion>" }`.

---
### Context:
<chat_history>
{history}
</chat_history>
<type>General</type>  
<text>What range do</text>  
#### Output:"""

LIBRECHAT_TITLE = """Provide a concise, 5-word-or-less title for the conversation, using its same language, with no punctuation. Apply title case conventions appropriate for the language. Never directly mention the language name or the word "title" and only return the title itself.

Conversation:
User: {question}
AI: The missiles can reach 190 miles [1]."""

LIBRECHAT_TITLE_OLD = """Write a concise title for this conversation in the given language. Title in 5 Words or Less. No Punctuation or Quotation. Must be in Title Case, written in the given Language. Start the title with one emoji that fits the topic (REQUIRED), The emoji should help communicate the subject
User: {question}
AI: The missiles can reach 190 miles [1]."""
