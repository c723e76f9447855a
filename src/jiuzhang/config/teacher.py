"""Typed config of the ``teacher`` params section: the OpenAI-compatible endpoint, sampling, budget."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jiuzhang.config.base_model import Section


class PricesConfig(Section):
    """USD per million tokens, used for the cost estimate and the budget cap."""

    input_per_million: float = Field(0.0, ge=0, description="USD per 1M prompt tokens (GPT-4-0613: 30).")
    output_per_million: float = Field(0.0, ge=0, description="USD per 1M completion tokens (GPT-4-0613: 60).")


class BudgetConfig(Section):
    """Hard caps over everything this stage's journal has paid for; null = no cap."""

    max_requests: int | None = Field(None, ge=1, description="Cap on requests answered by the teacher.")
    max_tokens: int | None = Field(None, ge=1, description="Cap on prompt + completion tokens.")
    max_usd: float | None = Field(None, gt=0, description="Cap on estimated cost in USD (from 'prices').")
    expected_output_tokens: int = Field(700, ge=1, description="Completion length assumed by the plan "
                                        "before answers are known (the cap check at run time uses max_tokens).")


class OfflineConfig(Section):
    """The offline stand-in teacher (smoke profile): a loopback server answering from banks of real text."""

    gsm8k_train: str = Field(description="GSM8K train JSONL: grade/middle school answers and tool programs.")
    samples: str = Field(description="JSONL of {input, output} problem/solution records for higher levels.")
    latency_ms: float = Field(0.0, ge=0, description="Artificial latency per answer, to exercise concurrency.")


class BatchConfig(Section):
    """``teacher.mode: batch``: the OpenAI Batch API (upload a JSONL of requests, one batch, poll, download);
    answers within 24 h at a discount. The batch id is committed to the journal, so a rerun re-attaches."""

    prices: PricesConfig | None = Field(None, description="USD per 1M tokens in batch mode; null = half of "
                                        "teacher.prices (the OpenAI Batch API's 50% discount).")
    completion_window: Literal["24h"] = Field("24h", description="The only window the Batch API offers.")
    poll_initial_s: float = Field(10.0, gt=0, description="First wait between status polls; grows x1.5 per poll.")
    poll_max_s: float = Field(300.0, gt=0, description="Longest wait between status polls.")
    max_wait_s: float | None = Field(None, gt=0, description="Stop waiting after this long (the batch stays "
                                     "paid for and recorded; a rerun re-attaches to it); null = wait until it ends.")
    max_submissions: int = Field(3, ge=1, le=20, description="Submission rounds per run: the first (every request "
                                 "without an answer, in as many batches as the limits below need), then "
                                 "resubmissions of requests that expired or failed with a retryable status "
                                 "(429/5xx, the enqueued-token limit).")
    max_requests_per_batch: int = Field(50000, ge=1, le=50000, description="The API's limit: 50,000 per batch.")
    max_queued_tokens: int | None = Field(None, ge=1, description="The organisation's enqueued-token limit for "
                                          "this model (input tokens of batches not yet ended; see the API's limits "
                                          "page): batches are sized and submitted so that the estimate of what "
                                          "is queued stays within it, several in flight at once. null = no limit "
                                          "(only max_in_flight).")
    max_in_flight: int = Field(8, ge=1, description="Batches running at once (each up to max_requests_per_batch).")
    resubmit_cancelled: bool = Field(False, description="Requests of a batch someone cancelled (dashboard or API) "
                                     "are not sent again unless this is true: a cancel is a person's decision, "
                                     "and resending would pay for what they stopped.")


class TeacherConfig(Section):
    """The strong teacher model (paper: GPT-4), reached over the OpenAI chat-completions protocol."""

    kind: Literal["openai", "offline"] = Field(description="'openai': any OpenAI-compatible endpoint; "
                                               "'offline': a loopback stand-in started by the stage (NOT a real LLM).")
    model: str = Field(min_length=1, description="Model name sent to the endpoint.")
    mode: Literal["online", "batch"] = Field("online", description="'online': chat-completion requests, "
                                             "concurrency at a time; 'batch': the Batch API at teacher.batch.prices.")
    batch: BatchConfig = Field(default_factory=BatchConfig, description="Settings of mode: batch.")
    base_url: str | None = Field(None, description="Endpoint, e.g. https://api.openai.com/v1; null = the "
                                 "client's default, which honours OPENAI_BASE_URL.")
    api_key_env: str = Field("OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                             description="Name of the environment variable holding the API key (never the key).")
    temperature: float = Field(0.6, ge=0, le=2, description="Sampling temperature (paper: 0.6).")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling; null = endpoint default.")
    max_tokens: int = Field(2500, ge=1, description="Max completion tokens (paper: 2,500).")
    concurrency: int = Field(8, ge=1, le=1024, description="Requests in flight at once.")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout in seconds.")
    max_retries: int = Field(6, ge=0, le=50, description="Retries of 429/5xx/timeouts/connection errors.")
    backoff_initial_s: float = Field(1.0, gt=0, description="First retry delay; doubles each retry, with jitter.")
    backoff_max_s: float = Field(60.0, gt=0, description="Longest retry delay (a longer Retry-After is honoured).")
    max_failed_share: float = Field(0.05, ge=0, le=1, description="Fail the stage when more than this "
                                    "share of requests fail after retries (answers stay committed; a rerun retries).")
    prices: PricesConfig = Field(default_factory=PricesConfig, description="Token prices.")
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description="Spending caps.")
    offline: OfflineConfig | None = Field(None, description="Required with kind: offline.")

    def active_prices(self, mode: Literal["online", "batch"] | None = None) -> PricesConfig:
        """The rates ``mode`` (default: teacher.mode) pays: teacher.prices online; teacher.batch.prices
        (default: half of teacher.prices) in batch."""
        if (mode or self.mode) == "online":
            return self.prices
        return self.batch.prices or PricesConfig(input_per_million=self.prices.input_per_million / 2,
                                                 output_per_million=self.prices.output_per_million / 2)

    @model_validator(mode="after")
    def _check(self) -> "TeacherConfig":
        if self.kind == "offline" and self.offline is None:
            raise ValueError("kind: offline needs an 'offline' section (gsm8k_train, samples)")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        return self
