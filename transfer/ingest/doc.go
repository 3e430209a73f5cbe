// Package ingest owns the way into the work queue: it turns OSS event
// records, however they arrived, into copy jobs and stores them (Intake),
// and it takes the requests the gateway's webhooks receive (Receiver):
// authenticates them, parses them within the record limit, recognises a
// signed request sent again, and says how many jobs were queued or why the
// request was refused. The gateway's HTTP side (handlers) reaches it only
// through the interfaces it declares; server wires the two together.
//
// The event formats and their checks are its subpackages: ossevent (the
// OSS event document), signature (the webhook HMAC), cloudevents
// (EventBridge), mns (MNS push), and sqsingest pulls from SQS into the
// same Intake.
package ingest
