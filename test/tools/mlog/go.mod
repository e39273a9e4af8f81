// A stand-in for monis.app/mlog v0.0.4, the logging helper of github.com/Azure/azure-workload-identity: the Go
// module proxy refuses that version, so ../azure-workload-identity replaces it with this module. It implements only
// what the webhook (cmd/webhook and pkg/webhook) calls, as structured JSON lines on stderr through logr's funcr; it
// changes what the webhook logs look like, never what the webhook does.
module monis.app/mlog

go 1.26.0

require github.com/go-logr/logr v1.4.3
