package mcp_test

func crashWorker() error { return nil }
