package main

import (
	"github.com/cairn-audit/cairn/forward"
	"github.com/cairn-audit/cairn/forward/elastic"
	"github.com/cairn-audit/cairn/forward/hec"
	"github.com/cairn-audit/cairn/forward/kafka"
	"github.com/cairn-audit/cairn/forward/nats"
	"github.com/cairn-audit/cairn/forward/syslog"
	"github.com/cairn-audit/cairn/forward/webhook"
)

// sinkTypes lists the forwarder sinks this binary offers.
func sinkTypes() []forward.SinkType {
	return []forward.SinkType{webhook.Type, hec.Type, elastic.Type, syslog.Type, kafka.Type, nats.Type}
}
