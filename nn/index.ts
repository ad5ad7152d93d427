// cellforge/nn: layers over any generated kernel module, the way PyTorch and Keras users know them
// (stacked, bidirectional, batch-first, variable-length), their training (losses, optimizers,
// schedules, fit) and model files. It imports the runtime and nothing else, so it runs in Node and in
// a browser alike.
export { LayerError, Recurrent, type Parameter, type RecurrentConfig, type RecurrentOptions } from "./recurrent.ts";
export { Model, ModelError, type ModelOptions } from "./model.ts";
export * from "./optim.ts";
export * from "./schedule.ts";
export * from "./loss.ts";
export * from "./data.ts";
export * from "./fit.ts";
export { saveModel, loadModel, encodeContainer, decodeContainer, ModelFileError, type ModelFileMeta, type LoadOptions, type SavedModel, type Container, type ContainerHeader, type SectionInfo } from "./file.ts";
export { sha256 } from "./sha256.ts";
