"""Tierwise's HTTP API: a BentoML service around `Predictor`.

Start it with `tierwise serve` (or `bentoml serve serving.service:Tierwise`). It loads the champion
models, the Feast online store and the latest tier snapshot once, at start-up, and answers from them;
nothing is trained and no raw order is read per request. Every failure has an explicit answer:
404 for an unknown customer, 400/422 naming the field for a bad body, 503 with the reason when the
models or the feature store are unavailable (BentoML's own error handler would hide the reason of a
5xx, so the API returns those responses itself), and 429 with `Retry-After` when more
requests are in flight than `max_concurrency` (`serving.admission`) — excess load is shed, not
queued. `predict` and `predict_batch` are `async`: a stored answer (`serving.answers`) is one read,
done on the event loop, and only an answer that must be computed goes to a worker thread, so the
loop stays free to count (and refuse) arriving requests. The other handlers compute, so they are
plain functions that BentoML runs in its worker thread.

Endpoints: POST /predict, /predict_batch, /score_features, /orders (order events, see
`serving.events`), /reload; GET /admin/version; BentoML's own
/livez, /readyz (200 only once models and features are loaded), /metrics and the OpenAPI page at /.
Who may call which of them (tokens and scopes, Host, Origin, body size) is `serving.access.Guard`.
"""

from __future__ import annotations

import gc
import logging
import threading
import uuid
from typing import Any

import anyio.to_thread
import bentoml
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from features.errors import InputError
from features.settings import Settings
from serving.access import Guard
from serving.admission import Admission
from serving.answers import answer_json
from serving.config import ServeConfig
from serving.openapi import ApiDocument
from serving.schemas import (
    OrdersRequest,
    OrdersResponse,
    PredictBatchRequest,
    PredictBatchResponse,
    Prediction,
    PredictRequest,
    ScoreFeaturesRequest,
    VersionResponse,
)

logger = logging.getLogger("tierwise.service")
CONFIG = ServeConfig.from_env()
admin = FastAPI(title="Tierwise admin", description="Which models are live.")


def _json(answer: BaseModel) -> Response:
    """The answer as a ready JSON response: BentoML's own output path (a streaming response built
    from the output spec) cost more per request than computing the prediction itself."""
    return _body(answer.model_dump_json().encode())


def _body(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _error(status: int, message: str, code: str, **fields: Any) -> JSONResponse:
    """An error answer: the message, a stable `code` for programs and a `request_id` that the service
    log repeats beside the details (exception text and paths stay in the log, never in the answer)."""
    request_id = uuid.uuid4().hex[:16]
    return JSONResponse(
        {"error": message, "code": code, "request_id": request_id, **fields},
        status_code=status,
        headers={"X-Request-ID": request_id},
    )


def _unavailable(reason: str, detail: BaseException | str | None = None) -> JSONResponse:
    """503: models or feature store cannot answer; `reason` is for the caller, `detail` for the log."""
    answer = _error(503, reason, "unavailable")
    if detail is not None:
        request_id = answer.headers["X-Request-ID"]
        if isinstance(detail, BaseException):
            logger.error("tierwise: %s (request %s)", reason, request_id, exc_info=detail)
        else:
            logger.error("tierwise: %s (request %s): %s", reason, request_id, detail)
    return answer


def _load_failure(exc: BaseException) -> str:
    """What a caller may read about a failed load: our own messages (no champion yet, no tier
    snapshot) are; anything else is named by its kind only."""
    if isinstance(exc, InputError):
        return str(exc)
    return f"{type(exc).__name__} while loading (see the service log)"


@bentoml.service(
    name="tierwise",
    workers=CONFIG.workers,
    threads=CONFIG.threads,
    # No BentoML `max_concurrency`: `serving.admission` bounds requests in flight (and says why).
    traffic={"timeout": CONFIG.timeout_seconds},
    tracing=CONFIG.bentoml_tracing,
)
@bentoml.asgi_app(admin, path="/admin")
class Tierwise:
    """Churn probability, expected value, growth potential, tier, risk flags and reasons per customer."""

    def __init__(self) -> None:
        from serving.predictor import Predictor

        self.config = CONFIG
        self.settings = Settings.resolve()
        self.predictor: Predictor | None = None
        self.load_error: str | None = None
        self._reloading = threading.Lock()
        self.events, self.events_error = self._open_events()  # its process loads beside ours
        try:
            self.predictor = Predictor(self.settings, self.config.policy, self.config.reason_excluded_views)
        except Exception as exc:  # the service starts and says why it cannot answer (503), see __is_ready__
            self.load_error = _load_failure(exc)
            logger.error("tierwise: models or feature store not loaded", exc_info=exc)
        if self.predictor is not None and self.config.reload_seconds:
            threading.Thread(target=self._watch_champions, daemon=True, name="champion-watch").start()
        if self.events is not None:
            try:
                self.events.ready()
            except Exception as exc:  # the service predicts without events; /orders says why
                logger.error("tierwise: order events unavailable", exc_info=exc)
                self.events, self.events_error = None, _load_failure(exc)
        freeze_heap()

    def _open_events(self) -> tuple[Any, str | None]:
        """The order events' process (`serving.event_process`), started; `__init__` waits until it
        has applied what a previous process logged but did not apply (before the service reports
        ready). Without it the service still predicts and `/orders` says why."""
        from prometheus_client import Counter  # here: BentoML sets up multiprocess metrics first

        from serving.event_process import EventProcess

        changes = Counter(
            "tierwise_tier_changes", "Tier changes caused by order events", ["from_tier", "to_tier"]
        )
        self.event_outcomes = Counter(
            "tierwise_order_events", "Order events received, by outcome", ["status"]
        )
        try:
            events = EventProcess(
                lambda: self.predictor.live.answer_key if self.predictor is not None else None,
                lambda change: changes.labels(change.from_tier or "none", change.to_tier).inc(),
                wait_seconds=6 * self.config.timeout_seconds,
            )
        except Exception as exc:  # the service predicts without events; /orders answers 503 with why
            logger.error("tierwise: order events unavailable", exc_info=exc)
            return None, _load_failure(exc)
        return events, None

    def __is_ready__(self) -> bool:
        return self.predictor is not None

    @bentoml.api(route="/predict", input_spec=PredictRequest, output_spec=Prediction)
    async def predict(self, customer_id: str, new_customer: bool = False) -> Any:
        """One customer's predictions, tier, risk flags and reasons (404 if the id has no features).

        The stored answer, when it is current (`serving.answers`), is one read of the online store,
        done here on the event loop: a thread hand-off would cost more than the read. Otherwise the
        answer is computed from the features in a worker thread, so the loop stays free to count and
        shed arriving requests (`max_concurrency` bounds those in flight either way)."""
        stored = self._answers(lambda p: p.stored_answer(customer_id))
        if stored is not None:
            return stored if isinstance(stored, JSONResponse) else _body(stored)
        answers = await anyio.to_thread.run_sync(
            self._answers, lambda p: p.predict_ids([customer_id], new_customer)
        )
        if isinstance(answers, JSONResponse):
            return answers
        answer = answers[0]
        if answer["status"] == "not_found":
            return _error(404, answer["error"], "not_found", customer_id=customer_id)
        return _body(answer_json(answer))

    @bentoml.api(route="/predict_batch", input_spec=PredictBatchRequest, output_spec=PredictBatchResponse)
    async def predict_batch(self, customer_ids: list[str], new_customers: bool = False) -> Any:
        """Up to `max_batch` customers; each item has its own status, so one unknown id fails nothing.
        Stored answers are read in one go, as in `predict`; the others are computed in a thread."""
        if len(customer_ids) > self.config.max_batch:
            return self._too_many("customer_ids", len(customer_ids), "ids", "too_many_ids")
        stored = self._answers(lambda p: p.stored_answers(customer_ids))
        if isinstance(stored, JSONResponse):
            return stored
        missing = [i for i, body in enumerate(stored) if body is None]
        statuses = ["ok"] * len(customer_ids)
        if missing:
            wanted = [customer_ids[i] for i in missing]
            answers = await anyio.to_thread.run_sync(
                self._answers, lambda p: p.predict_ids(wanted, new_customers)
            )
            if isinstance(answers, JSONResponse):
                return answers
            for i, answer in zip(missing, answers, strict=True):
                stored[i], statuses[i] = answer_json(answer), answer["status"]
        # PredictBatchResponse's JSON, with each item's bytes as `predict` returns them.
        return _body(
            b'{"predictions":[%b],"found":%d,"cold_start":%d,"not_found":%d}'
            % (
                b",".join(stored),
                statuses.count("ok"),
                statuses.count("cold_start"),
                statuses.count("not_found"),
            )
        )

    @bentoml.api(route="/score_features", input_spec=ScoreFeaturesRequest, output_spec=Prediction)
    def score_features(self, customer_id: str, features: dict[str, Any]) -> Any:
        """Answers for a feature vector in the request: what-if analysis, customers not in the store yet."""
        answers = self._answers(lambda p: p.score_features([(customer_id, features)]))
        return answers if isinstance(answers, JSONResponse) else _body(answer_json(answers[0]))

    @bentoml.api(route="/orders", input_spec=OrdersRequest, output_spec=OrdersResponse)
    def orders(self, orders: list[Any]) -> Any:
        """Order events: each checked by the import's rules, logged durably before this answer, then
        applied (features, predictions and tier updated). 200 when none was refused; 422 naming the
        first refused event's field (409 when every refusal is a conflict with a known order); either
        way the other events are logged and every refused one is kept in the log's quarantine."""
        if self.events is None:
            return _unavailable(f"order events unavailable: {self.events_error}")
        if len(orders) > self.config.max_batch:
            return self._too_many("orders", len(orders), "events", "too_many_orders")
        try:
            receipt = self.events.submit(orders, source="api")
        except InputError as exc:
            return _error(422, str(exc), "invalid_input", field=str(exc).split(":")[0])
        except Exception as exc:  # logged events stay pending and are applied at the next start
            return _unavailable("order events could not be applied; accepted ones are logged", exc)
        for outcome in receipt.outcomes:
            self.event_outcomes.labels(outcome.status).inc()
        answer = OrdersResponse.from_receipt(receipt)
        refused = [o for o in receipt.outcomes if o.status == "refused"]
        if not refused:
            return _json(answer)
        conflict = all(o.reason == "conflicts_with_existing_order" for o in refused)
        first = refused[0]
        return _error(
            409 if conflict else 422,
            f"orders[{first.index}].{first.message}",
            "order_conflict" if conflict else "invalid_order",
            field=f"orders[{first.index}].{first.field}" if first.field else f"orders[{first.index}]",
            **answer.model_dump(mode="json"),
        )

    @bentoml.api(route="/reload")
    def reload(self) -> dict:
        """Load the current champions and tier snapshot; on failure the old ones keep serving.

        One at a time, with the periodic watch too: a reload while another runs is answered 409 (each
        holds a full set of models in memory)."""
        if not self._reloading.acquire(blocking=False):
            return _error(
                409, "a reload is already running; try again when it has finished", "reload_running"
            )
        try:
            return self._reload()
        finally:
            self._reloading.release()

    def _reload(self) -> Any:
        if self.predictor is None:
            return self._start_again()
        result = self.predictor.reload()
        if result.changed:
            freeze_heap()
        if result.error:
            return _unavailable("reload failed, still serving the previous models", result.error)
        return {"changed": result.changed, "model_versions": result.versions}

    @admin.get("/version", response_model=VersionResponse)
    def version(self) -> Any:
        """Which model versions, policy and snapshots are live."""
        if self.predictor is None:
            return _unavailable(f"models or feature store unavailable: {self.load_error}")
        live = self.predictor.live
        return VersionResponse(
            service=_package_version(),
            models=[
                {
                    "name": name,
                    "version": live.champions.versions.get(name),
                    "run_id": live.champions.run_ids.get(name),
                    "source": source,
                }
                for name, source in live.champions.sources.items()
            ],
            policy=live.lookup.policy.name,
            features_as_of=live.lookup.as_of,
            tiers_as_of=live.lookup.as_of,
            loaded_at=live.loaded_at.isoformat(),
            last_reload_error=self.predictor.last_reload_error,
        )

    def _too_many(self, field: str, count: int, noun: str, code: str) -> JSONResponse:
        """422 for a list longer than `max_batch`, naming the field and the limit."""
        return _error(
            422, f"{field}: {count} {noun}, at most {self.config.max_batch} per call", code, field=field
        )

    def _answers(self, work: Any) -> Any:
        """`work(predictor)`, or the error answer its failure calls for."""
        if self.predictor is None:
            return _unavailable(f"models or feature store unavailable: {self.load_error}")
        try:
            return work(self.predictor)
        except InputError as exc:
            field = str(exc).split(":")[0]
            return _error(422, str(exc), "invalid_input", field=field)
        except Exception as exc:  # a dependency failed mid-request: a 503 with a request id, never a bare 500
            return _unavailable("feature store or model unavailable", exc)

    def _start_again(self) -> Any:
        from serving.predictor import Predictor

        try:
            self.predictor, self.load_error = (
                Predictor(self.settings, self.config.policy, self.config.reason_excluded_views),
                None,
            )
        except Exception as exc:
            self.load_error = _load_failure(exc)
            return _unavailable(f"models or feature store unavailable: {self.load_error}", exc)
        return {"changed": True, "model_versions": self.predictor.live.champions.versions}

    def _watch_champions(self) -> None:
        import time

        while True:
            time.sleep(self.config.reload_seconds)
            try:
                if (
                    self.predictor is not None
                    and self.predictor.is_stale()
                    and self._reloading.acquire(False)
                ):
                    try:
                        result = self.predictor.reload()
                        if result.changed:
                            freeze_heap()
                    finally:
                        self._reloading.release()
                    logger.info("tierwise: periodic reload: %s", result)
            except Exception:  # the watch must outlive a registry that is briefly unreachable
                logger.exception("tierwise: periodic reload check failed; trying again later")


Tierwise.add_asgi_middleware(Admission, limit=-(-CONFIG.max_concurrency // CONFIG.workers))  # per worker
Tierwise.add_asgi_middleware(Guard)
Tierwise.add_asgi_middleware(
    ApiDocument, generated=lambda: Tierwise.openapi_spec.asdict(), version=lambda: _package_version()
)


def freeze_heap() -> None:
    """Put everything alive now (models, tier lookup, libraries) out of the cyclic collector's reach.

    Why: a full collection walks every tracked object, about 470,000 once the service has loaded
    (0.2 s here), and stalls every request in flight: `predict`, whose p50 is 0.6 ms, had a p99 of
    50-230 ms, and so had BentoML's own constant endpoint. Frozen objects are still freed when their
    last reference goes; after a reload the old models' cycles are collected once, then the new
    heap is frozen."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class _BadInputLogFilter(logging.Filter):
    """BentoML logs a body that fails validation as an ERROR with a traceback; it is the caller's
    mistake, answered 400 with the fields named, so it is logged as one INFO line without the input."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pydantic import ValidationError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args, record.exc_info = "%s: %s", (record.getMessage(), error.title), None
        return True


logging.getLogger("bentoml._internal.server.http_app").addFilter(_BadInputLogFilter())


def _package_version() -> str:
    """The installed package's version; a Bento ships the code without installing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tierwise")
    except PackageNotFoundError:
        return "unreleased"
