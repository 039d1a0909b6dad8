"""The ASGI app: OpenAI-compatible routes over the registry's engines.

Requests are parsed and tokenised on the event loop's thread pool, queued to
their model's engine, and answered from an asyncio queue the engine thread
feeds. A client that goes away sets its job's cancelled flag; the engine frees
the slot before its next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..chat_template import ChatTemplateError
from ..model.chat import chat_chunk, completion, logprobs_content, new_id
from .engine import Event, Job, QueueFull
from .metrics import ServerMetrics
from .registry import Registry, ServedModel
from .options import Tier
from .requests import (ApiError, GenerationRequest, chat_request, completion_request, detokenize_request, invalid,
                       parse_json, tokenize_request)
from .responses import model_entry, text_chunk, text_completion, text_logprobs, usage_chunk

OPEN_PATHS = ("/health",)  # answered without an API key


def error_response(e: ApiError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


class ApiKeyMiddleware:
    """Checks 'Authorization: Bearer KEY' (or 'x-api-key: KEY') against the server's keys."""

    def __init__(self, app, keys: list[str]):
        self.app, self.keys = app, [k.encode() for k in keys]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.keys or scope["path"] in OPEN_PATHS or scope["method"] == "OPTIONS":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"")
        given = auth[7:].strip() if auth[:7].lower() == b"bearer " else headers.get(b"x-api-key", b"")
        if not any(hmac.compare_digest(given, k) for k in self.keys):
            why = "missing API key" if not given else "invalid API key"
            e = ApiError(401, f"{why}: send 'Authorization: Bearer KEY'", type="authentication_error",
                         code="invalid_api_key")
            return await error_response(e)(scope, receive, send)
        return await self.app(scope, receive, send)


async def _body(request: Request) -> dict:
    return parse_json(await request.body())


def _sse(obj) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


class Routes:
    def __init__(self, registry: Registry, metrics: ServerMetrics):
        self.registry, self.metrics = registry, metrics

    # -- generation -------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        body = await _body(request)
        req, messages = chat_request(body)
        served, tier = self.registry.resolve(req.model)
        template_vars = _template_vars(body, tier)
        try:
            ids = await run_in_threadpool(served.engine.model.chat_prompt_ids, messages, **template_vars)
        except ChatTemplateError as e:
            raise ApiError(400, f"cannot apply the chat template: {e}", param="messages") from None
        except (TypeError, ValueError) as e:  # a message the template's checks refuse
            raise invalid(e) from None
        return await self._generate(request, served, tier, req, ids, chat=True)

    async def completions(self, request: Request) -> Response:
        req, prompt = completion_request(await _body(request))
        served, tier = self.registry.resolve(req.model)
        model = served.engine.model
        if isinstance(prompt, str):
            ids = await run_in_threadpool(model.tokenize, prompt, True, True)
        else:
            try:
                ids = model.check_tokens(prompt).tolist()
            except (TypeError, ValueError) as e:
                raise ApiError(400, str(e), param="prompt") from None
        return await self._generate(request, served, tier, req, ids, chat=False)

    async def _generate(self, request: Request, served: ServedModel, tier: Tier | None, req: GenerationRequest,
                        ids: list[int], chat: bool) -> Response:
        model = served.engine.model
        if len(ids) > model.n_ctx:
            raise ApiError(400, f"the prompt has {len(ids)} tokens; the context of a slot holds {model.n_ctx}",
                           param="messages" if chat else "prompt", code="context_length_exceeded")
        if not ids:
            raise ApiError(400, "the prompt is empty", param="prompt")
        if tier is not None:
            req.sampling = {**tier.sampling, **req.sampling}
            if req.max_tokens is None:
                req.max_tokens = tier.max_tokens
        try:
            params = model.sampling_params(req.sampling_kwargs(), req.ignore_eos)
        except (TypeError, ValueError) as e:
            raise invalid(e) from None
        # No limit: until the context is full, or one slot's context more when it shifts.
        max_tokens = req.max_tokens if req.max_tokens is not None else model.n_ctx
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()
        job = Job(ids, params, max_tokens, req.stop, emit=lambda e: loop.call_soon_threadsafe(queue.put_nowait, e))
        try:
            served.engine.submit(job)
        except QueueFull as e:
            served.metrics.finished("rejected")
            raise ApiError(503, f"server busy: {e}", type="unavailable_error",
                           headers={"Retry-After": "1"}) from None
        name = req.model or served.name
        if req.stream:
            return StreamingResponse(self._stream(served, job, queue, req, name, chat), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return await self._whole(request, served, job, queue, req, name, chat)

    async def _whole(self, request: Request, served: ServedModel, job: Job, queue: asyncio.Queue, req, name: str,
                     chat: bool) -> Response:
        watcher = asyncio.ensure_future(_disconnected(request))
        parts = []
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, watcher}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():  # the client left
                    getter.cancel()
                    job.cancelled.set()
                    served.metrics.finished("cancelled")
                    return Response(status_code=499)
                event = getter.result()
                if event.kind == "error":
                    served.metrics.finished("error")
                    raise ApiError(500, event.text, type="server_error")
                parts.append(event.text)
                if event.kind == "done":
                    break
        finally:
            watcher.cancel()
        served.metrics.finished("ok")
        text, tok, want = "".join(parts), served.engine.model.tokenizer, req.logprobs is not None
        body = (completion if chat else text_completion)(name, text, job.result, tok, want)
        return JSONResponse(body)

    async def _stream(self, served: ServedModel, job: Job, queue: asyncio.Queue, req: GenerationRequest, name: str,
                      chat: bool) -> AsyncIterator[str]:
        obj = "chat.completion.chunk" if chat else "text_completion"
        ident, created = new_id("chatcmpl" if chat else "cmpl")
        tok, sent_logprobs, sent_chars = served.engine.model.tokenizer, 0, 0
        outcome = "cancelled"

        def chunk(text: str, finish: str | None) -> dict:
            nonlocal sent_logprobs, sent_chars
            lps = None
            if req.logprobs is not None:  # the tokens sampled since the last chunk
                fresh = job.result.logprobs[sent_logprobs:]
                sent_logprobs += len(fresh)
                lps = logprobs_content(tok, fresh) if chat else text_logprobs(tok, fresh, sent_chars)
            sent_chars += len(text)
            if chat:
                return chat_chunk(ident, created, name, {"content": text} if text else {}, finish, lps)
            return text_chunk(ident, created, name, text, finish, lps)

        try:
            if chat:
                yield _sse(chat_chunk(ident, created, name, {"role": "assistant", "content": ""}, None))
            while True:
                event = await queue.get()
                if event.kind == "error":
                    outcome = "error"
                    yield _sse(ApiError(500, event.text, type="server_error").body())
                    return
                if event.kind == "text":
                    yield _sse(chunk(event.text, None))
                    continue
                yield _sse(chunk("", job.result.finish_reason))
                if req.include_usage:
                    yield _sse(usage_chunk(ident, created, name, obj, job.result))
                yield "data: [DONE]\n\n"
                outcome = "ok"
                return
        finally:  # also when the client disconnects: the generator is closed or cancelled
            if outcome == "cancelled":
                job.cancelled.set()
            served.metrics.finished(outcome)

    # -- information ------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        data = []
        for name, m, tier in self.registry.names():
            meta = {"state": m.state, "device": m.device, "n_ctx": m.options.n_ctx, "slots": m.options.n_parallel}
            if tier is not None:
                meta["tier_of"] = m.name
            data.append(model_entry(name, m.created, meta))
        return JSONResponse({"object": "list", "data": data})

    async def health(self, request: Request) -> Response:
        states = {m.name: m.health() for m in self.registry.models}
        kinds = {s["state"] for s in states.values()}
        if "loading" in kinds:
            status, code = "loading", 503
        elif kinds == {"failed"}:
            status, code = "error", 503
        else:
            status, code = ("ok" if kinds == {"ready"} else "degraded"), 200
        return JSONResponse({"status": status, "models": states}, status_code=code)

    async def slots(self, request: Request) -> Response:
        return JSONResponse({m.name: m.engine.slots_info() if m.engine else [] for m in self.registry.models})

    async def props(self, request: Request) -> Response:
        models = [m.props() for m in self.registry.models]
        return JSONResponse({**models[0], "models": models} if len(models) == 1 else {"models": models})

    async def metrics_text(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)

    async def tokenize(self, request: Request) -> Response:
        body = await _body(request)
        content, add_special, with_pieces = tokenize_request(body)
        served, _ = self.registry.resolve(body.get("model"))
        tok = served.engine.model.tokenizer
        ids = await run_in_threadpool(tok.encode, content, add_special=add_special, parse_special=True)
        if with_pieces:
            return JSONResponse({"tokens": [{"id": i, "piece": tok.token_to_piece(i).decode("utf-8", "replace")}
                                            for i in ids]})
        return JSONResponse({"tokens": ids})

    async def detokenize(self, request: Request) -> Response:
        body = await _body(request)
        tokens = detokenize_request(body)
        served, _ = self.registry.resolve(body.get("model"))
        try:
            return JSONResponse({"content": served.engine.model.detokenize(tokens)})
        except ValueError as e:
            raise ApiError(400, str(e), param="tokens") from None


def _template_vars(body: dict, tier: Tier | None) -> dict:
    """Chat template variables: the tier's reasoning setting, then the request's chat_template_kwargs."""
    extra = body.get("chat_template_kwargs") or {}
    if not isinstance(extra, dict):
        raise ApiError(400, "chat_template_kwargs must be an object", param="chat_template_kwargs")
    if tier is not None and tier.reasoning is not None:
        extra = {"enable_thinking": tier.reasoning, **extra}
    return extra


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def create_app(registry: Registry, metrics: ServerMetrics, api_keys: list[str]) -> Starlette:
    r = Routes(registry, metrics)
    post = ["POST"]
    routes = [
        Route("/v1/chat/completions", r.chat_completions, methods=post),
        Route("/chat/completions", r.chat_completions, methods=post),
        Route("/v1/completions", r.completions, methods=post),
        Route("/completions", r.completions, methods=post),
        Route("/v1/models", r.models), Route("/models", r.models),
        Route("/health", r.health), Route("/v1/health", r.health),
        Route("/slots", r.slots), Route("/props", r.props), Route("/metrics", r.metrics_text),
        Route("/tokenize", r.tokenize, methods=post), Route("/detokenize", r.detokenize, methods=post),
    ]

    async def api_error(request: Request, e: ApiError) -> Response:
        return error_response(e)

    async def not_found(request: Request, e) -> Response:
        return error_response(ApiError(e.status_code, f"{request.method} {request.url.path}: {e.detail}",
                                       type="not_found_error" if e.status_code == 404 else "invalid_request_error"))

    return Starlette(routes=routes,
                     middleware=[Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"],
                                            allow_headers=["*"]),
                                 Middleware(ApiKeyMiddleware, keys=api_keys)],
                     exception_handlers={ApiError: api_error, 404: not_found, 405: not_found},
                     lifespan=_lifespan(registry))


def _lifespan(registry: Registry):
    @contextlib.asynccontextmanager
    async def lifespan(app):
        registry.start_loading()  # /health answers 503 until the models are in memory
        try:
            yield
        finally:
            await run_in_threadpool(registry.close)
    return lifespan
