"""Network faults between sites: an asyncio TCP fault proxy and drivers that control links."""
