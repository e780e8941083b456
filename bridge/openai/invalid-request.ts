/** A request field that cannot be read: 400 with `param` naming it. Its own module so that any mapper may throw it. */
export class InvalidRequest extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
    this.name = "InvalidRequest";
  }
}
