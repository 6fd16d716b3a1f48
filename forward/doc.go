// Package forward streams committed audit events to sinks (webhooks,
// SIEMs, Kafka, NATS): the forwarder service with its CRUD operations,
// the dispatcher that delivers from durable per-context cursors, the SSRF
// guard every sink dials through, and the contract sinks implement. The
// sinks themselves live in forward/<sink>, one package each; the formats
// in forward/format.
//
// Delivery is at least once and in order per context: events are read
// from the log after the cursor, and the cursor advances — in the store,
// in one transaction — only after the sink acknowledged them. A failing
// sink is retried with exponential backoff and jitter; when the retry
// budget is spent the forwarder is parked with its last error visible,
// and resumes from the same cursor. Nothing is ever dropped.
//
// It never logs event payloads or sink settings (which hold secrets), and
// never returns a secret setting: every view is masked.
package forward
