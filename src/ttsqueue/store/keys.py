"""Every Redis key the product uses, in one place, all under `REDIS_PREFIX`."""

from __future__ import annotations

from dataclasses import dataclass

from ttsqueue.asterisk_servers import DEFAULT_SERVER


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def refused(self, job_id: str) -> str:
        """Marks a job whose submission was refused after its record was written: a message
        that reached RabbitMQ anyway must not bring it back (`JobLifecycle.rebuild`)."""
        return f"{self.prefix}job:{job_id}:refused"

    @property
    def replication_marker(self) -> str:
        """A counter written before WAIT, so that WAIT covers every earlier write."""
        return f"{self.prefix}replication:marker"

    def history(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:history"

    @property
    def index(self) -> str:
        """Sorted set of every retained job id, scored by creation time (epoch ms)."""
        return f"{self.prefix}jobs"

    def status_index(self, status: str) -> str:
        """Sorted set of the job ids currently in `status`, scored by creation time."""
        return f"{self.prefix}jobs:status:{status}"

    def priority_index(self, priority: str) -> str:
        return f"{self.prefix}jobs:priority:{priority}"

    def status_priority_index(self, status: str, priority: str) -> str:
        """The job ids in `status` with `priority` (filters on both stay exact and cheap)."""
        return f"{self.status_index(status)}:{priority}"

    @property
    def expiry_index(self) -> str:
        """Sorted set of every retained job id scored by when its record expires (epoch ms):
        how expired records are found and dropped from the other indexes."""
        return f"{self.prefix}jobs:expiry"

    @property
    def unconfirmed(self) -> str:
        """Sorted set of the jobs whose first message RabbitMQ has not confirmed yet, scored by
        creation time (epoch ms): an entry that stays there means the accepting process died
        between the record and the publish, and the sweeper sends the message."""
        return f"{self.prefix}jobs:unconfirmed"

    def swept(self, job_id: str) -> str:
        """How many times the sweeper has sent a job a new message (bounded)."""
        return f"{self.prefix}swept:{job_id}"

    @property
    def sweeper_lock(self) -> str:
        """Held by the one worker sweeping at a time."""
        return f"{self.prefix}sweeper:lock"

    @property
    def reaper_lock(self) -> str:
        """Held by the one worker resolving calls that lost track at a time."""
        return f"{self.prefix}reaper:lock"

    @property
    def outcomes(self) -> str:
        """Hash: call outcome -> number of finished attempts with that outcome."""
        return f"{self.prefix}stats:outcomes"

    @property
    def metrics(self) -> str:
        """Hash of lifetime counters: processed, succeeded, failed, processing_ms_total."""
        return f"{self.prefix}stats:metrics"

    @property
    def submitted(self) -> str:
        """Hash: priority -> jobs accepted."""
        return f"{self.prefix}stats:submitted"

    @property
    def finished(self) -> str:
        """Hash: `<status>|<outcome>` -> jobs that ended so."""
        return f"{self.prefix}stats:finished"

    def histogram(self, name: str) -> str:
        """Hash of a histogram: per-bucket counts (`le:<upper bound>`, `le:+Inf`) and
        `sum_us` (store/metrics.py)."""
        return f"{self.prefix}stats:hist:{name}"

    @property
    def throughput(self) -> str:
        """Hash: epoch minute -> jobs finished in that minute (pruned to the last hour)."""
        return f"{self.prefix}stats:throughput"

    @property
    def events(self) -> str:
        """Pub/sub channel carrying every status change (for live views)."""
        return f"{self.prefix}events"

    @property
    def webhooks(self) -> str:
        """Stream of status changes waiting for webhook delivery."""
        return f"{self.prefix}webhooks"

    @property
    def webhooks_leader(self) -> str:
        """Lock naming the one worker that delivers webhooks (so each job's stay in order)."""
        return f"{self.prefix}webhooks:leader"

    def rate_limit(self, key_digest: str) -> str:
        """The sliding window of one API key's requests (`:total` and `:seq` beside it)."""
        return f"{self.prefix}ratelimit:{key_digest}"

    def idempotency(self, key_digest: str) -> str:
        return f"{self.prefix}idem:{key_digest}"

    def attempt(self, job_id: str, attempt: int) -> str:
        """Set once, before the attempt's call is originated: at most one dial per attempt."""
        return f"{self.prefix}attempt:{job_id}:{attempt}"

    def deliveries(self, job_id: str, attempt: int, tech_retry: int = 0) -> str:
        """How many times one message (an attempt, after `tech_retry` technical retries) was
        delivered when due: more than MAX_DELIVERIES means it keeps killing its worker."""
        return f"{self.prefix}deliveries:{job_id}:{attempt}:{tech_retry}"

    @property
    def workers(self) -> str:
        """Set of worker ids seen; each one's liveness is its own expiring key."""
        return f"{self.prefix}workers"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}worker:{worker_id}"

    def worker_stats(self, worker_id: str) -> str:
        return f"{self.prefix}worker:{worker_id}:stats"

    @property
    def call_slots(self) -> str:
        """Sorted set of live call leases, scored by lease expiry (epoch ms)."""
        return f"{self.prefix}calls:active"

    @property
    def call_rate(self) -> str:
        """Sorted set of recent origination times, for CALLS_PER_SECOND."""
        return f"{self.prefix}calls:rate"

    def server_lines(self, server: str) -> str:
        """`call_slots` of one Asterisk server (the single-server one keeps the plain key)."""
        return self.call_slots if server == DEFAULT_SERVER else f"{self.call_slots}:{server}"

    def server_rate(self, server: str) -> str:
        """`call_rate` of one Asterisk server (the single-server one keeps the plain key)."""
        return self.call_rate if server == DEFAULT_SERVER else f"{self.call_rate}:{server}"

    @property
    def line_waiter_servers(self) -> str:
        """Hash of each waiter's candidate servers (`name,name`), read by the grant script."""
        return f"{self.prefix}calls:waiting:servers"

    @property
    def line_waiters_high(self) -> str:
        """Sorted set of high-priority jobs waiting for a trunk line, scored by arrival."""
        return f"{self.prefix}calls:waiting:high"

    @property
    def line_waiters_normal(self) -> str:
        """Sorted set of normal jobs waiting for a trunk line, scored by arrival."""
        return f"{self.prefix}calls:waiting:normal"

    @property
    def line_waiters_alive(self) -> str:
        """Sorted set of every waiter, scored by when it stops counting unless it asks again."""
        return f"{self.prefix}calls:waiting:alive"

    @property
    def line_arrivals(self) -> str:
        """Counter giving each new waiter its place in line."""
        return f"{self.prefix}calls:waiting:seq"

    @property
    def line_high_streak(self) -> str:
        """High-priority grants in a row while a normal job waited (bounded: no starvation)."""
        return f"{self.prefix}calls:waiting:streak"

    def call_record(self, call_id: str) -> str:
        """Hash of what Asterisk reported about one attempt's call (AMI events, first-seen
        values), written by every worker's AMI session, read by whichever worker follows it."""
        return f"{self.prefix}call:{call_id}"

    @property
    def dialer_presence(self) -> str:
        """Hash: worker id -> JSON of its dialer's state (backend, connected or not, last beat)."""
        return f"{self.prefix}dialer:presence"

    @property
    def cache_lru(self) -> str:
        """Sorted set: cache key -> last use (epoch ms)."""
        return f"{self.prefix}cache:lru"

    @property
    def cache_sizes(self) -> str:
        """Hash: cache key -> size in bytes of its files."""
        return f"{self.prefix}cache:sizes"

    @property
    def cache_stats(self) -> str:
        """Hash: hits, misses, bytes."""
        return f"{self.prefix}cache:stats"

    def cache_in_use(self, cache_key: str) -> str:
        """Sorted set of leases (job attempt -> expiry ms) pinning an entry during a call."""
        return f"{self.cache_in_use_prefix}{cache_key}"

    @property
    def cache_in_use_prefix(self) -> str:
        """`cache_in_use` without the entry's key, for a script that learns the key itself."""
        return f"{self.prefix}cache:inuse:"

    def cache_writing(self, cache_key: str) -> str:
        """String: token of the worker putting an entry's files in place or deleting them.
        Renaming and indexing under it keep the index naming the file that is on disk."""
        return f"{self.prefix}cache:writing:{cache_key}"

    @property
    def cache_files(self) -> str:
        """Hash: cache key -> identity (mtime, inode) of its files, so that eviction never
        deletes a newer copy put in place meanwhile by another worker."""
        return f"{self.prefix}cache:files"

    # Calling policy (SPEC §13) -------------------------------------------------------------
    @property
    def dnc(self) -> str:
        """Sorted set of the do-not-call numbers (E.164), all scored 0: listed in number order,
        paged by value (ZRANGE BYLEX)."""
        return f"{self.prefix}dnc"

    @property
    def dnc_meta(self) -> str:
        """Hash: E.164 -> JSON of when, by whom and how the number was added."""
        return f"{self.prefix}dnc:meta"

    @property
    def dnc_audit(self) -> str:
        """Stream of every change to the do-not-call list (add, remove, import), capped."""
        return f"{self.prefix}dnc:audit"

    def contacts(self, e164: str, local_day: str) -> str:
        """Sorted set of one number's contacts on one local day (YYYY-MM-DD): claimant ->
        lease expiry (ms) while its call is under way, +inf once answered."""
        return f"{self.prefix}contacts:{e164}:{local_day}"

    # Campaigns (SPEC §13) -----------------------------------------------------------------
    @property
    def campaigns(self) -> str:
        """Sorted set of every campaign id, scored by creation time (epoch ms)."""
        return f"{self.prefix}campaigns"

    @property
    def campaigns_active(self) -> str:
        """Set of the campaigns a pacer still has work for (rows to release or calls to count)."""
        return f"{self.prefix}campaigns:active"

    def campaign(self, campaign_id: str) -> str:
        """Hash: the campaign's settings, state, release cursor and pacing clock."""
        return f"{self.prefix}campaign:{campaign_id}"

    def campaign_rows(self, campaign_id: str) -> str:
        """List of the campaign's valid rows (JSON), in file order."""
        return f"{self.prefix}campaign:{campaign_id}:rows"

    def campaign_errors(self, campaign_id: str) -> str:
        """List of the rows refused at creation (JSON: line or index, field, message)."""
        return f"{self.prefix}campaign:{campaign_id}:errors"

    def campaign_inflight(self, campaign_id: str) -> str:
        """Set of the ids of the campaign's jobs released and not yet seen finished."""
        return f"{self.prefix}campaign:{campaign_id}:inflight"

    def campaign_counts(self, campaign_id: str) -> str:
        """Hash: finished jobs by `status:<s>`, `outcome:<o>`, and `confirmed`."""
        return f"{self.prefix}campaign:{campaign_id}:counts"

    def campaign_lock(self, campaign_id: str) -> str:
        """Held by the one worker pacing the campaign at a time."""
        return f"{self.prefix}campaign:{campaign_id}:lock"
