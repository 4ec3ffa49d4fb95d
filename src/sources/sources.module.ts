import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { SourceRegistry } from './source-registry';

@Module({
  providers: [{ provide: SourceRegistry, useFactory: (config: AppConfig) => SourceRegistry.fromConfig(config), inject: [AppConfig] }],
  exports: [SourceRegistry],
})
export class SourcesModule {}
