// The public surface of the course library: notebooks and the command line import from here.
// Each helper line below re-exports one concept file.
export * from "./random";
export * from "./errors";
export * from "./engine";
