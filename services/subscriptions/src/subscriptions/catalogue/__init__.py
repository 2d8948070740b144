"""What products and add-ons share: storage, use-case steps and gRPC helpers of a catalogue."""
