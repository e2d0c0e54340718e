/**
 * Import first in a script's entry point: sets ORT_DISABLE_TELEMETRY (unless ORT_TELEMETRY=true) before any module
 * that loads ONNX Runtime (directly or through transformers.js) is evaluated, as the server's main does. ES modules
 * are evaluated in import order, so nothing imported after this one sees the environment unset.
 */
import { ortTelemetryFrom } from '../src/config.js';
import { applyOrtTelemetry } from '../src/clip/runtime/telemetry.js';

applyOrtTelemetry(ortTelemetryFrom(process.env));
