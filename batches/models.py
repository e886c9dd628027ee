"""Batch jobs (Anthropic Message Batches and OpenAI Batch API) arrive with the batch issue."""
