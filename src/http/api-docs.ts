import type * as Swagger from '@nestjs/swagger';

/**
 * The OpenAPI decorators of @nestjs/swagger that the controllers use, recorded where they are
 * written and applied to the same classes and methods, in the same order, when the document is
 * first asked for (bootstrap.ts, `serveOpenApi`). Loading @nestjs/swagger is ~530 modules (its
 * es-toolkit compat build alone is 428) and 130-170 ms of an ~830 ms start on a 2-core box: in a
 * restart, time every subscriber waits (docs/benchmarks.md, "Issue 26, sixth round"). The
 * document is read by people and linters, never on a subscriber's path.
 */
type Name = 'ApiBearerAuth' | 'ApiExcludeController' | 'ApiHeader' | 'ApiOkResponse' | 'ApiOperation' | 'ApiParam' | 'ApiQuery' | 'ApiResponse' | 'ApiTags';

type Recorded = { name: Name; args: unknown[]; target: object; key?: string | symbol; descriptor?: PropertyDescriptor };
type Applied = (target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => unknown;

const recorded: Recorded[] = [];

function deferred<N extends Name>(name: N): (...args: Parameters<(typeof Swagger)[N]>) => ClassDecorator & MethodDecorator {
  return (...args) => {
    const record = (target: object, key?: string | symbol, descriptor?: PropertyDescriptor): void => void recorded.push({ name, args, target, key, descriptor });
    return record as ClassDecorator & MethodDecorator;
  };
}

export const ApiBearerAuth = deferred('ApiBearerAuth');
export const ApiExcludeController = deferred('ApiExcludeController');
export const ApiHeader = deferred('ApiHeader');
export const ApiOkResponse = deferred('ApiOkResponse');
export const ApiOperation = deferred('ApiOperation');
export const ApiParam = deferred('ApiParam');
export const ApiQuery = deferred('ApiQuery');
export const ApiResponse = deferred('ApiResponse');
export const ApiTags = deferred('ApiTags');

/** Applies, with the loaded library, every decorator recorded so far (each once). */
export function applyRecordedDecorators(swagger: Pick<typeof Swagger, Name>): void {
  for (const { name, args, target, key, descriptor } of recorded.splice(0)) {
    const decorator = (swagger[name] as (...a: unknown[]) => Applied)(...args);
    decorator(target, key, descriptor);
  }
}
