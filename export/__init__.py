"""torch → ONNX, lint, quantization, manifest and golden vectors (import: lstm_edge.export)."""

from lstm_edge.export.exporter import ExportConfig, ExportResult, export_bundle, export_onnx
from lstm_edge.export.lint import Finding, lint

__all__ = ["ExportConfig", "ExportResult", "Finding", "export_bundle", "export_onnx", "lint"]
