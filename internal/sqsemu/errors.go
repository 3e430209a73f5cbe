package sqsemu

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// apiError is an SQS error answer. On the wire (AWS JSON 1.0 in query
// compatible mode) it is the status, a body {"__type": "<namespace>#<shape>",
// "message": ...} and the header x-amzn-query-error: "<query code>;Sender"
// (or ";Receiver"). aws-sdk-go-v2 resolves the shape name in its type
// registry (so QueueDoesNotExist becomes *types.QueueDoesNotExist) and
// reports the query code as the error code, as it does against real SQS.
type apiError struct {
	status  int
	shape   string // "com.amazonaws.sqs#QueueDoesNotExist" or a coral shape
	code    string // the query-compatible error code
	sender  bool   // Sender (client) fault, else Receiver (server) fault
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

const (
	sqsNS   = "com.amazonaws.sqs#"
	coralNS = "com.amazon.coral.service#"
)

// modeledErrors are SQS's modeled error shapes: shape name -> query code
// and status, as the SQS Smithy model (aws-sdk-go-v2/service/sqs/schemas)
// declares them.
var modeledErrors = map[string]struct {
	code   string
	status int
}{
	"BatchEntryIdsNotDistinct":     {"AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400},
	"BatchRequestTooLong":          {"AWS.SimpleQueueService.BatchRequestTooLong", 400},
	"EmptyBatchRequest":            {"AWS.SimpleQueueService.EmptyBatchRequest", 400},
	"InvalidAddress":               {"InvalidAddress", 404},
	"InvalidAttributeName":         {"InvalidAttributeName", 400},
	"InvalidAttributeValue":        {"InvalidAttributeValue", 400},
	"InvalidBatchEntryId":          {"AWS.SimpleQueueService.InvalidBatchEntryId", 400},
	"InvalidIdFormat":              {"InvalidIdFormat", 400},
	"InvalidMessageContents":       {"InvalidMessageContents", 400},
	"InvalidSecurity":              {"InvalidSecurity", 403},
	"MessageNotInflight":           {"AWS.SimpleQueueService.MessageNotInflight", 400},
	"OverLimit":                    {"OverLimit", 403},
	"PurgeQueueInProgress":         {"AWS.SimpleQueueService.PurgeQueueInProgress", 403},
	"QueueDeletedRecently":         {"AWS.SimpleQueueService.QueueDeletedRecently", 400},
	"QueueDoesNotExist":            {"AWS.SimpleQueueService.NonExistentQueue", 400},
	"QueueNameExists":              {"QueueAlreadyExists", 400},
	"ReceiptHandleIsInvalid":       {"ReceiptHandleIsInvalid", 404},
	"RequestThrottled":             {"RequestThrottled", 403},
	"ResourceNotFoundException":    {"ResourceNotFoundException", 404},
	"TooManyEntriesInBatchRequest": {"AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400},
	"UnsupportedOperation":         {"AWS.SimpleQueueService.UnsupportedOperation", 400},
}

// modeled returns the error of a modeled SQS shape.
func modeled(shape, format string, args ...any) *apiError {
	m, ok := modeledErrors[shape]
	if !ok {
		panic("sqsemu: unknown modeled error " + shape)
	}
	return &apiError{status: m.status, shape: sqsNS + shape, code: m.code, sender: true, message: fmt.Sprintf(format, args...)}
}

// errorForCode builds the error an injected fault asks for: code may be a
// modeled shape name ("QueueDoesNotExist"), a query code
// ("AWS.SimpleQueueService.NonExistentQueue") or anything else
// ("InternalError", "ServiceUnavailable").
func errorForCode(status int, code, message string) *apiError {
	for shape, m := range modeledErrors {
		if code == shape || code == m.code {
			return &apiError{status: status, shape: sqsNS + shape, code: m.code, sender: status < 500, message: message}
		}
	}
	return &apiError{status: status, shape: sqsNS + code, code: code, sender: status < 500, message: message}
}

func errQueueDoesNotExist() *apiError {
	return modeled("QueueDoesNotExist", "The specified queue does not exist.")
}

func errInvalidParameterValue(format string, args ...any) *apiError {
	return &apiError{status: 400, shape: sqsNS + "InvalidParameterValue", code: "InvalidParameterValue", sender: true, message: fmt.Sprintf(format, args...)}
}

func errMissingParameter(name string) *apiError {
	return &apiError{status: 400, shape: sqsNS + "MissingParameter", code: "MissingParameter", sender: true,
		message: "The request must contain the parameter " + name + "."}
}

func errInvalidAttributeValue(name string, reason string) *apiError {
	msg := "Invalid value for the parameter " + name + "."
	if reason != "" {
		msg += " Reason: " + reason
	}
	return modeled("InvalidAttributeValue", "%s", msg)
}

func errReceiptHandleIsInvalid(handle string) *apiError {
	return modeled("ReceiptHandleIsInvalid", "The input receipt handle %q is not a valid receipt handle.", handle)
}

func errInternal(message string) *apiError {
	return &apiError{status: 500, shape: coralNS + "InternalFailure", code: "InternalError", message: message}
}

// Errors of the AWS request layer (signatures, framing), which SQS answers
// with coral shapes and a query code.
func errSerialization(message string) *apiError {
	return &apiError{status: 400, shape: coralNS + "SerializationException", code: "SerializationException", sender: true, message: message}
}

func errUnknownOperation(message string) *apiError {
	return &apiError{status: 400, shape: coralNS + "UnknownOperationException", code: "InvalidAction", sender: true, message: message}
}

func errMissingAuthentication() *apiError {
	return &apiError{status: 403, shape: coralNS + "MissingAuthenticationTokenException", code: "MissingAuthenticationToken", sender: true,
		message: "Request is missing Authentication Token"}
}

func errInvalidClientTokenID() *apiError {
	return &apiError{status: 403, shape: coralNS + "UnrecognizedClientException", code: "InvalidClientTokenId", sender: true,
		message: "The security token included in the request is invalid."}
}

func errSignature(message string) *apiError {
	return &apiError{status: 403, shape: coralNS + "InvalidSignatureException", code: "SignatureDoesNotMatch", sender: true, message: message}
}

func errIncompleteSignature(message string) *apiError {
	return &apiError{status: 400, shape: coralNS + "IncompleteSignatureException", code: "IncompleteSignature", sender: true, message: message}
}

// batchError is one failed entry of a batch answer.
type batchError struct {
	ID          string `json:"Id"`
	Code        string `json:"Code"`
	Message     string `json:"Message,omitempty"`
	SenderFault bool   `json:"SenderFault"`
}

func entryError(id string, e *apiError) batchError {
	return batchError{ID: id, Code: e.code, Message: e.message, SenderFault: e.sender}
}

func (s *Server) writeError(w http.ResponseWriter, e *apiError) {
	fault := "Receiver"
	if e.sender {
		fault = "Sender"
	}
	h := w.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Set("x-amzn-query-error", e.code+";"+fault)
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.shape, e.message})
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}
