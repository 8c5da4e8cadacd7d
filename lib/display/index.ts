// Rich notebook output for the course (tslab): charts, tables and live progress bars.
// Each concept lives in its own file under display/; this file is the one import.
export * from "./kernel";
export * from "./figure-image";
export * from "./plotly";
export * from "./table";
export * from "./progress";
export * from "./run-progress";
