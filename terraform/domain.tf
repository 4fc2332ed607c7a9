# A custom domain for the API (off by default: var.domain_name = null). With a Route 53 zone
# (var.domain_zone_id) everything is made here: an ACM certificate validated by DNS records in
# the zone, the API Gateway domain name (regional endpoint, TLS 1.2), the mapping of the
# domain's root to this API's stage, and A/AAAA alias records. Without a zone, bring an issued
# certificate (var.domain_certificate_arn) and point the name at the api_domain_target output
# yourself. The execute-api URL keeps working either way.

locals {
  domain_on  = var.domain_name != null
  new_cert   = local.domain_on && var.domain_certificate_arn == null
  route53_on = local.domain_on && var.domain_zone_id != null
}

resource "aws_acm_certificate" "api" {
  count = local.new_cert ? 1 : 0

  domain_name       = var.domain_name
  validation_method = "DNS"

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "cert_validation" {
  for_each = local.new_cert && local.route53_on ? {
    for o in aws_acm_certificate.api[0].domain_validation_options : o.domain_name => o
  } : {}

  zone_id         = var.domain_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

# Waits until ACM has issued the certificate (the records above are what it checks).
resource "aws_acm_certificate_validation" "api" {
  count = local.new_cert ? 1 : 0

  certificate_arn         = aws_acm_certificate.api[0].arn
  validation_record_fqdns = [for r in aws_route53_record.cert_validation : r.fqdn]
}

resource "aws_apigatewayv2_domain_name" "api" {
  count = local.domain_on ? 1 : 0

  domain_name = var.domain_name

  domain_name_configuration {
    certificate_arn = local.new_cert ? aws_acm_certificate_validation.api[0].certificate_arn : var.domain_certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }
}

# https://<domain_name>/tasks reaches this API's stage (no base path).
resource "aws_apigatewayv2_api_mapping" "api" {
  count = local.domain_on ? 1 : 0

  # The HTTP API's stage, or the REST API's (a regional domain maps either).
  api_id      = local.http ? aws_apigatewayv2_api.http[0].id : aws_api_gateway_rest_api.rest[0].id
  domain_name = aws_apigatewayv2_domain_name.api[0].id
  stage       = local.http ? aws_apigatewayv2_stage.api[0].id : aws_api_gateway_stage.rest[0].stage_name
}

resource "aws_route53_record" "api" {
  for_each = local.route53_on ? toset(["A", "AAAA"]) : toset([])

  zone_id = var.domain_zone_id
  name    = var.domain_name
  type    = each.value

  alias {
    name                   = aws_apigatewayv2_domain_name.api[0].domain_name_configuration[0].target_domain_name
    zone_id                = aws_apigatewayv2_domain_name.api[0].domain_name_configuration[0].hosted_zone_id
    evaluate_target_health = false
  }
}
