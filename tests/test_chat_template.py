"""hetinfer.chat_template: built-in formats exact to the character, GGUF templates, and a sandbox that holds."""

from __future__ import annotations

import datetime
import time

import pytest

import hetinfer
from hetinfer.chat_template import BUILTIN_TEMPLATES, MAX_OUTPUT_CHARS, ChatTemplate, ChatTemplateError
from hetinfer.testing import chat_templates, write_model

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": " Hi there \n"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Why is the sky blue?"},
]

# Expected renderings of CONVERSATION, with add_generation_prompt and without; bos "<B>", eos "<E>".
EXPECTED = {
    "gemma": ("<B><start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n"
              "<start_of_turn>model\nHello!<end_of_turn>\n"
              "<start_of_turn>user\nWhy is the sky blue?<end_of_turn>\n", "<start_of_turn>model\n"),
    "llama3": ("<B><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nWhy is the sky blue?<|eot_id|>",
               "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "chatml": ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi there \n<|im_end|>\n"
               "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nWhy is the sky blue?<|im_end|>\n",
               "<|im_start|>assistant\n"),
}

# Gemma 3's published template (google/gemma-3-*-it tokenizer_config.json, also in the -it GGUFs):
# the reference our built-in must reproduce.
OFFICIAL_GEMMA3 = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

# Conversations every built-in handles (user/assistant alternating after an optional system prompt).
CONVERSATIONS = [
    CONVERSATION,
    CONVERSATION[1:],
    [{"role": "user", "content": "Grüß dich 👋"}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "  spaced  "}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": " b\n"}, {"role": "user", "content": "c"}],
]


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_renders_the_official_format_exactly(name):
    template = ChatTemplate.builtin(name, bos_token="<B>", eos_token="<E>")
    turns, prompt = EXPECTED[name]
    assert template.render(CONVERSATION) == turns + prompt
    assert template.render(CONVERSATION, add_generation_prompt=False) == turns


@pytest.mark.parametrize("conversation", CONVERSATIONS)
@pytest.mark.parametrize("generation_prompt", [True, False])
def test_builtin_gemma_equals_gemma3_published_template(conversation, generation_prompt):
    ours = ChatTemplate.builtin("gemma", bos_token="<bos>")
    official = ChatTemplate(OFFICIAL_GEMMA3, bos_token="<bos>")
    assert (ours.render(conversation, add_generation_prompt=generation_prompt)
            == official.render(conversation, add_generation_prompt=generation_prompt))


@pytest.mark.parametrize("name, reference", [("gemma", chat_templates.GEMMA), ("llama3", chat_templates.LLAMA3),
                                             ("chatml", chat_templates.CHATML)])
@pytest.mark.parametrize("conversation", CONVERSATIONS)
def test_builtin_equals_the_test_models_template(name, reference, conversation):
    ours = ChatTemplate.builtin(name, bos_token="<B>")
    assert ours.render(conversation) == ChatTemplate(reference, bos_token="<B>").render(conversation)


def test_real_gemma_file_gets_the_gemma_format(gemma_path):
    # The 270M base model ships no chat template: from_metadata picks the built-in by architecture.
    metadata = hetinfer.open_gguf(gemma_path).metadata
    assert "tokenizer.chat_template" not in metadata
    template = ChatTemplate.from_metadata(metadata)
    assert (template.name, template.bos_token, template.eos_token) == ("gemma", "<bos>", "<eos>")
    assert template.render(CONVERSATION) == "".join(EXPECTED["gemma"]).replace("<B>", "<bos>")


# What write_model's chat templates (hetinfer.testing.chat_templates) make of a short conversation.
WRITTEN = {
    ("llama", "spm"): "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nhi [/INST] yo </s><s>[INST] ok? [/INST]",
    ("llama", "bpe"): ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
                       "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                       "<|start_header_id|>assistant<|end_header_id|>\n\nyo<|eot_id|>"
                       "<|start_header_id|>user<|end_header_id|>\n\nok?<|eot_id|>"
                       "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    ("qwen3", "bpe"): ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                       "<|im_start|>assistant\nyo<|im_end|>\n<|im_start|>user\nok?<|im_end|>\n<|im_start|>assistant\n"),
    ("gemma3", "spm"): ("<bos><start_of_turn>user\nS\n\nhi<end_of_turn>\n<start_of_turn>model\nyo<end_of_turn>\n"
                        "<start_of_turn>user\nok?<end_of_turn>\n<start_of_turn>model\n"),
}


@pytest.mark.parametrize("arch, tokenizer", sorted(WRITTEN))
def test_templates_of_written_models_render(tmp_path, arch, tokenizer):
    path = write_model(tmp_path / "m.gguf", arch, "F32", n_embd=64, n_layer=1, n_head=2, n_head_kv=1, n_ff=128,
                       tokenizer=tokenizer)
    template = ChatTemplate.from_metadata(hetinfer.open_gguf(path).metadata)
    conversation = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "yo"}, {"role": "user", "content": "ok?"}]
    assert template.render(conversation) == WRITTEN[arch, tokenizer]


def vocabulary(*specials: str) -> list[str]:
    return ["<unk>", "<s>", "</s>", *specials, "a", "b"]


@pytest.mark.parametrize("metadata, expected", [
    ({"general.architecture": "gemma3", "tokenizer.ggml.tokens": vocabulary()}, "gemma"),
    ({"general.architecture": "gemma", "tokenizer.ggml.tokens": vocabulary()}, "gemma"),
    ({"general.architecture": "llama", "tokenizer.ggml.tokens": vocabulary("<start_of_turn>")}, "gemma"),
    ({"general.architecture": "qwen2", "tokenizer.ggml.tokens": vocabulary("<|im_start|>", "<|im_end|>")}, "chatml"),
    ({"general.architecture": "llama", "tokenizer.ggml.tokens": vocabulary("<|start_header_id|>")}, "llama3"),
])
def test_from_metadata_picks_a_builtin_when_the_file_has_none(metadata, expected):
    metadata = {**metadata, "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2}
    template = ChatTemplate.from_metadata(metadata)
    assert (template.name, template.source, template.bos_token, template.eos_token) == (
        expected, BUILTIN_TEMPLATES[expected], "<s>", "</s>")


def test_from_metadata_without_a_fitting_builtin_says_what_to_do():
    with pytest.raises(ChatTemplateError, match="llama.*ChatTemplate.builtin"):
        ChatTemplate.from_metadata({"general.architecture": "llama", "tokenizer.ggml.tokens": vocabulary()})


def test_from_metadata_uses_the_files_template_and_given_tokens():
    metadata = {"tokenizer.chat_template": "{{ bos_token }}|{{ messages[0].content }}|{{ eos_token }}",
                "tokenizer.ggml.bos_token_id": 0, "tokenizer.ggml.eos_token_id": 1}
    assert ChatTemplate.from_metadata(metadata, tokens=["<go>", "<stop>"]).render(user("x")) == "<go>|x|<stop>"
    assert ChatTemplate.from_metadata({"tokenizer.chat_template": "{{ bos_token }}x"}).render(user("")) == "x"


@pytest.mark.parametrize("token_id", [5, -1, "1"])
def test_from_metadata_rejects_a_bad_special_token_id(token_id):
    with pytest.raises(ChatTemplateError, match="tokenizer.ggml.eos_token_id"):
        ChatTemplate.from_metadata({"tokenizer.chat_template": "", "tokenizer.ggml.tokens": ["a", "b"],
                                    "tokenizer.ggml.eos_token_id": token_id})


def test_builtin_rejects_unknown_names():
    with pytest.raises(ValueError, match="'vicuna'.*chatml"):
        ChatTemplate.builtin("vicuna")


def test_gemma_rejects_roles_out_of_order():
    with pytest.raises(ChatTemplateError, match="must alternate"):
        ChatTemplate.builtin("gemma").render([{"role": "assistant", "content": "first"}])


# --- messages ---------------------------------------------------------------

def test_text_parts_are_joined_with_newlines_and_the_callers_messages_kept():
    parts = [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    messages = [{"role": "user", "content": parts, "name": "ann"}]
    out = ChatTemplate("{{ messages[0].content }}|{{ messages[0].name }}").render(messages)
    assert out == "one\ntwo|ann"
    assert messages[0]["content"] is parts


def test_assistant_tool_call_without_content_renders_as_empty():
    messages = [{"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f"}}]}]
    out = ChatTemplate("[{{ messages[0].content }}]{{ messages[0].tool_calls[0].function.name }}").render(messages)
    assert out == "[]f"


@pytest.mark.parametrize("messages, error, match", [
    ("hello", TypeError, "messages must be a list"),
    ([], ValueError, "messages is empty"),
    ([{"role": "user", "content": "a"}, "b"], TypeError, r"messages\[1\] must be a dict"),
    ([{"content": "a"}], ValueError, r"messages\[0\] has no 'role'"),
    ([{"role": "user"}], ValueError, r"messages\[0\] has no 'content'"),
    ([{"role": 1, "content": "a"}], TypeError, r"messages\[0\]\['role'\] must be a str"),
    ([{"role": "user", "content": 7}], TypeError, r"messages\[0\]\['content'\] must be a str"),
    ([{"role": "user", "content": None}], TypeError, r"messages\[0\]\['content'\] must be a str"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], ValueError,
     r"messages\[0\]\['content'\]\[0\] .*only text parts"),
    ([{"role": "user", "content": [{"type": "text", "text": 3}]}], ValueError, r"\['content'\]\[0\]"),
])
def test_bad_messages_are_named(messages, error, match):
    with pytest.raises(error, match=match):
        ChatTemplate.builtin("chatml").render(messages)


def test_tools_and_extra_variables_reach_the_template():
    template = ChatTemplate("{{ tools[0].name }} {{ enable_thinking }} {{ add_generation_prompt }}")
    assert template.render(user("x"), tools=[{"name": "search"}], enable_thinking=False) == "search False True"
    with pytest.raises(TypeError, match="tools must be a list"):
        template.render(user("x"), tools="search")


# --- the environment transformers gives templates ---------------------------

def test_globals_and_filters_of_hf_templates():
    template = ChatTemplate(
        "{{ strftime_now('%Y') }}|{{ {'k': 'Köln <&>'} | tojson }}|{{ [1] | tojson(indent=2) }}|"
        "{% for m in range(5) %}{% if m == 1 %}{% continue %}{% endif %}{% if m == 3 %}{% break %}{% endif %}"
        "{{ m }}{% endfor %}")
    year = datetime.datetime.now().year
    assert template.render(user("x")) in (f"{y}|{{\"k\": \"Köln <&>\"}}|[\n  1\n]|02" for y in (year, year + 1))


def test_block_lines_leave_no_blank_lines():
    # trim_blocks and lstrip_blocks, as transformers renders: tags on their own lines vanish.
    template = ChatTemplate("{% for m in messages %}\n    {% if m.role %}\n{{ m.content }}\n"
                            "    {% endif %}\n{% endfor %}")
    assert template.render(user("a") + user("b")) == "a\nb\n"


def test_raise_exception_is_a_chat_template_error():
    with pytest.raises(ChatTemplateError, match="no system prompts here"):
        ChatTemplate("{{ raise_exception('no system prompts here') }}").render(user("x"))


def test_syntax_errors_are_reported_at_construction():
    with pytest.raises(ChatTemplateError, match="syntax error on line 2"):
        ChatTemplate("ok\n{% if %}")


# --- hostile templates ------------------------------------------------------

@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ raise_exception.__globals__['__builtins__'] }}",
    "{{ namespace.__init__ }}",
    "{{ dict.mro() }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ ''|attr('__class__') }}",
    "{{ messages.append(1) }}",
    "{{ messages[0].update(role='system') }}",
])
def test_internals_are_out_of_reach(source):
    messages = user("x")
    with pytest.raises(ChatTemplateError, match="SecurityError"):
        ChatTemplate(source).render(messages)
    assert messages == user("x")


@pytest.mark.parametrize("source", [
    "{{ config.items() }}",                 # Flask's config: not here
    "{{ lipsum.__globals__ }}",             # lipsum is removed
    "{% include '/etc/passwd' %}",          # no loader: nothing is read from disk
    "{% import 'os' as os %}{{ os.system('true') }}",
])
def test_nothing_else_to_reach(source):
    with pytest.raises(ChatTemplateError):
        ChatTemplate(source).render(user("x"))


@pytest.mark.parametrize("source, match", [
    ("{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}", "loops ran over"),
    ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "loops ran over"),
    ("{% set l = range(99999)|list %}{% for i in l %}{% for j in l %}{% endfor %}{% endfor %}", "loops ran over"),
    ("{% for i in range(99999) %}{{ 'x' * 99 }}{% endfor %}", "the output passed"),
    ("{{ 'x' * 1000000000 }}", "over the limit"),
    ("{{ [0] * 1000000000 }}", "over the limit"),
    ("{{ 10 ** 100000000 }}", "too large"),
    ("{{ 'x'|center(1000000000) }}", "over the size limit"),
    ("{{ 'x'.ljust(1000000000) }}", "over the size limit"),
    ("{{ [1]|tojson(indent=1000000000) }}", "over the size limit"),
    ("{{ '{:>10000000000}'.format(1) }}", "seven or more digits"),
    ("{{ '{:>10000000000}'|attr('format')(1) }}", "seven or more digits"),
    ("{{ '%10000000000d' % 1 }}", "seven or more digits"),
    ("{{ '%10000000000d'|format(1) }}", "seven or more digits"),
    ("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
     "over the limit"),
    ("{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('x') }}", "over the limit"),
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "RecursionError"),
])
def test_runaway_templates_stop_quickly(source, match):
    start = time.perf_counter()
    with pytest.raises(ChatTemplateError, match=match):
        ChatTemplate(source).render(user("x"))
    assert time.perf_counter() - start < 10  # unguarded, these run for hours or exhaust memory


def test_the_output_limit_grows_with_the_conversation():
    long = [{"role": ("user", "assistant")[i % 2], "content": "word " * 200} for i in range(2001)]
    assert len(ChatTemplate.builtin("chatml").render(long)) > MAX_OUTPUT_CHARS
